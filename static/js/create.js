// The create form: the shapes and the negative prompt of the chosen model, example prompts and
// "Surprise me" filled in place, and Ctrl+Enter (⌘+Enter on a Mac) to submit.
(function () {
  const form = document.querySelector("form.create-form");
  if (!form) return;
  const prompt = form.querySelector("textarea[name=prompt]");

  function chosenModel() {
    const checked = form.querySelector("input[name=model]:checked");
    return checked ? checked.value : "";
  }

  function offers(element, model) {
    return (element.dataset.models || "").split(" ").includes(model);
  }

  function showModelOptions() {
    const model = chosenModel();
    if (!model) return;
    const shapes = [...form.querySelectorAll("[data-ratios] label")];
    shapes.forEach((label) => {
      const offered = offers(label, model);
      label.hidden = !offered;
      label.querySelector("input").disabled = !offered;
      const value = (label.dataset.values || "").split(" ").find((pair) => pair.startsWith(`${model}=`));
      const shown = label.querySelector("[data-ratio-value]");
      if (value && shown) shown.textContent = value.split("=")[1];
    });
    const checked = form.querySelector("[data-ratios] input:checked:not(:disabled)");
    if (!checked) {
      const square = form.querySelector("[data-ratios] input[value=square]:not(:disabled)");
      const first = square || form.querySelector("[data-ratios] input:not(:disabled)");
      if (first) first.checked = true;
    }
    const negative = form.querySelector("[data-negative-prompt]");
    if (negative) {
      const takes = offers(negative, model);
      negative.hidden = !takes;
      negative.querySelector("textarea").disabled = !takes;
    }
  }

  function fill(text) {
    prompt.value = text;
    prompt.focus();
    prompt.dispatchEvent(new Event("input", { bubbles: true }));
  }

  form.querySelectorAll("input[name=model]").forEach((input) => input.addEventListener("change", showModelOptions));
  showModelOptions();

  form.querySelectorAll("[data-example]").forEach((link) => link.addEventListener("click", (event) => {
    event.preventDefault();
    fill(link.textContent.trim());
  }));

  const data = document.getElementById("surprise-prompts");
  const surprises = data ? JSON.parse(data.textContent) : [];
  let next = Math.floor(Math.random() * Math.max(1, surprises.length));
  const surprise = form.querySelector("[data-surprise]");
  if (surprise && surprises.length) {
    surprise.addEventListener("click", (event) => {
      event.preventDefault();
      // Never the same prompt twice in a row.
      let text = surprises[next % surprises.length];
      if (text === prompt.value && surprises.length > 1) text = surprises[++next % surprises.length];
      next += 1;
      fill(text);
    });
  }

  const hint = form.querySelector("[data-kbd-hint]");
  if (hint) {
    if (/Mac|iPhone|iPad/.test(navigator.platform)) hint.innerHTML = "<kbd>⌘</kbd>+<kbd>Enter</kbd>";
    hint.hidden = false;
  }
  form.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      const button = form.querySelector("button[type=submit]");
      if (button && !button.disabled) form.requestSubmit(button);
    }
  });
})();
