// The gallery's selection: how many are chosen, "Select all", and the bulk buttons only when
// something is chosen. Without script the buttons simply send what is ticked.
(function () {
  const form = document.querySelector("[data-selection]");
  if (!form) return;
  const boxes = () => [...document.querySelectorAll("input[type=checkbox][form=gallery-select]")];
  const count = form.querySelector("[data-selected-count]");
  const all = form.querySelector("[data-select-all]");

  function update() {
    const chosen = boxes().filter((box) => box.checked).length;
    count.textContent = chosen ? `${chosen} selected` : "";
    form.querySelectorAll("[data-needs-selection]").forEach((control) => {
      if (control.tagName === "SUMMARY") {
        control.parentElement.classList.toggle("is-disabled", !chosen);
        control.setAttribute("aria-disabled", String(!chosen));
        if (!chosen) control.parentElement.open = false;
      } else {
        control.disabled = !chosen;
      }
    });
    const total = boxes().length;
    all.hidden = total === 0;
    all.textContent = chosen === total && total ? "Select none" : "Select all";
    document.querySelectorAll(".gallery-item").forEach((item) => {
      const box = item.querySelector("input[type=checkbox]");
      item.classList.toggle("is-selected", Boolean(box && box.checked));
    });
  }

  form.querySelectorAll("summary[data-needs-selection]").forEach((summary) => summary.addEventListener("click", (event) => {
    if (summary.getAttribute("aria-disabled") === "true") event.preventDefault();
  }));
  all.addEventListener("click", () => {
    const list = boxes();
    const every = list.every((box) => box.checked);
    list.forEach((box) => { box.checked = !every; });
    update();
  });
  document.addEventListener("change", (event) => {
    if (event.target.matches("input[type=checkbox][form=gallery-select]")) update();
  });
  update();
})();
