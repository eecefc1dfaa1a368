// Batch edit: show the total cost (photos x the chosen model's price) before submitting.
// Only its own span changes; the balance sentence next to it stays as the server wrote it.
// Looks the form up on each change: after a form error the form's markup is replaced.
(function () {
  const update = () => {
    const form = document.querySelector(".create-form");
    const total = document.querySelector("[data-batch-total]");
    if (!form || !total) return;
    const input = form.querySelector("input[type=file]");
    // Only the photos count: a file of another type is not sent, so it costs nothing.
    const types = (input.accept || "").split(",").map((type) => type.trim()).filter(Boolean);
    const files = Array.from(input.files).filter((file) => !types.length || types.includes(file.type)).length;
    const model = form.querySelector("input[name=model]:checked");
    const cost = model ? Number(model.dataset.cost) : 0;
    if (!files) { total.textContent = "Choose photos to see the total."; return; }
    const sum = (files * cost).toLocaleString("en-US");
    total.textContent = `${files} photo${files === 1 ? "" : "s"} × ${cost.toLocaleString("en-US")} = ${sum} credits.`;
  };
  document.addEventListener("change", update);
  update();
})();
