// Before/after: a slider reveals the edited photo over the original; buttons jump to a view.
// Runs on page load and on every fragment htmx swaps in (the job page's live status).
(function () {
  function init(root) {
    root.querySelectorAll("[data-compare]").forEach((box) => {
      if (box.dataset.ready) return;
      box.dataset.ready = "1";
      const slider = box.querySelector("input[type=range]");
      const set = (value) => box.style.setProperty("--split", value + "%");
      slider.addEventListener("input", () => set(slider.value));
      box.querySelectorAll("[data-show]").forEach((button) =>
        button.addEventListener("click", () => { slider.value = button.dataset.show; set(button.dataset.show); }));
      set(slider.value);
    });
  }
  init(document);
  document.addEventListener("htmx:load", (event) => init(event.target));
})();
