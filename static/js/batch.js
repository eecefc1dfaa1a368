// Batch edit: show the total cost (photos x the chosen model's price) before submitting.
// Only its own span changes; the balance sentence next to it stays as the server wrote it.
(function () {
  const form = document.querySelector(".create-form");
  const total = document.querySelector("[data-batch-total]");
  if (!form || !total) return;
  const update = () => {
    const files = form.querySelector("input[type=file]").files.length;
    const model = form.querySelector("input[name=model]:checked");
    const cost = model ? Number(model.dataset.cost) : 0;
    if (!files) { total.textContent = "Choose photos to see the total."; return; }
    const sum = (files * cost).toLocaleString("en-US");
    const warn = files > 10 ? " A batch takes up to 10 photos." : "";
    total.textContent = `${files} photo${files === 1 ? "" : "s"} × ${cost.toLocaleString("en-US")} = ${sum} credits.${warn}`;
  };
  form.addEventListener("change", update);
  update();
})();
