// Several images per job: offer only as many as the chosen model makes, and show the total
// (images x the model's price per image) before submitting. Looks the form up on each change:
// after a form error the form's markup is replaced.
(function () {
  const update = () => {
    const form = document.querySelector(".create-form");
    const total = document.querySelector("[data-job-total]");
    if (!form || !total) return;
    const model = form.querySelector("input[name=model]:checked");
    if (!model) { total.textContent = ""; return; }
    const cost = Number(model.dataset.cost);
    const most = Number(model.dataset.maxOutputs || 1);
    const counts = form.querySelectorAll("input[name=num_outputs]");
    const fieldset = form.querySelector("[data-outputs]");
    if (fieldset) fieldset.hidden = most < 2;
    counts.forEach((input) => {
      const offered = Number(input.value) <= most;
      input.disabled = !offered;
      input.closest("label").hidden = !offered;
      if (!offered && input.checked) counts[0].checked = true;
    });
    const chosen = form.querySelector("input[name=num_outputs]:checked");
    const count = chosen ? Number(chosen.value) : 1;
    const sum = (count * cost).toLocaleString("en-US");
    total.textContent = count > 1
      ? `${count} images × ${cost.toLocaleString("en-US")} = ${sum} credits.`
      : `This costs ${sum} credits.`;
  };
  document.addEventListener("change", update);
  update();
})();
