// Before/after: a slider reveals the edited photo over the original; buttons toggle views.
(function () {
  document.querySelectorAll("[data-compare]").forEach((box) => {
    const slider = box.querySelector("input[type=range]");
    const set = (value) => box.style.setProperty("--split", value + "%");
    slider.addEventListener("input", () => set(slider.value));
    box.querySelectorAll("[data-show]").forEach((button) =>
      button.addEventListener("click", () => { slider.value = button.dataset.show; set(button.dataset.show); }));
    set(slider.value);
  });
})();
