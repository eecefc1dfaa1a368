// Photo uploads on the create pages: drop photos or choose them, see thumbnails, learn about
// a wrong type, size or count before anything is sent, and keep the chosen photos when the
// server answers with a form error (the form is sent with fetch and only its markup changes).
(function () {
  const megabytes = (bytes) => `${Math.round((bytes / 1048576) * 10) / 10} MB`.replace(".0 MB", " MB");

  function acceptedTypes(input) {
    return (input.accept || "").split(",").map((type) => type.trim()).filter(Boolean);
  }

  function isPhoto(input, file) {
    const types = acceptedTypes(input);
    return file.type.startsWith("image/") && (!types.length || types.includes(file.type));
  }

  function problemsOf(input, files) {
    const types = (input.accept || "").split(",").map((type) => type.trim()).filter(Boolean);
    const maxBytes = Number(input.dataset.maxBytes || 0);
    const maxCount = Number(input.dataset.maxCount || 1);
    const problems = [];
    if (files.length > maxCount) {
      problems.push(maxCount === 1 ? "Choose one photo." : `A batch takes up to ${maxCount} photos; you chose ${files.length}.`);
    }
    for (const file of files) {
      if (types.length && !types.includes(file.type)) problems.push(`${file.name} is not a JPEG, PNG or WebP photo.`);
      else if (maxBytes && file.size > maxBytes) problems.push(`${file.name} is ${megabytes(file.size)}; photos can be up to ${megabytes(maxBytes)}.`);
    }
    return problems;
  }

  function setFiles(input, files) {
    const transfer = new DataTransfer();
    files.forEach((file) => transfer.items.add(file));
    input.files = transfer.files;
    input.dispatchEvent(new Event("change", { bubbles: true }));
  }

  function render(zone) {
    const input = zone.querySelector("input[type=file]");
    const files = Array.from(input.files);
    const list = zone.querySelector(".thumbs");
    const errors = zone.querySelector(".upload-problems");
    list.replaceChildren();
    files.forEach((file, index) => {
      const item = document.createElement("li");
      // Only a photo of an accepted type gets a picture; anything else says what it is.
      let image;
      if (isPhoto(input, file)) {
        image = document.createElement("img");
        image.alt = file.name;
        image.src = URL.createObjectURL(file);
      } else {
        image = document.createElement("span");
        image.className = "thumb-rejected";
        image.textContent = `${file.name}: not a photo`;
        item.classList.add("is-rejected");
      }
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "thumb-remove";
      remove.textContent = "×";
      remove.setAttribute("aria-label", `Remove ${file.name}`);
      remove.addEventListener("click", () => setFiles(input, files.filter((_, other) => other !== index)));
      item.append(image, remove);
      list.append(item);
    });
    const problems = problemsOf(input, files);
    errors.replaceChildren(...problems.map((text) => Object.assign(document.createElement("li"), { textContent: text })));
    zone.classList.toggle("has-problems", problems.length > 0);
    return problems;
  }

  function enhance(input) {
    if (input.closest(".dropzone")) return;
    const zone = document.createElement("div");
    zone.className = "dropzone";
    const hint = document.createElement("p");
    hint.className = "dropzone-hint";
    hint.textContent = input.multiple ? "Drop your photos here, or choose them:" : "Drop a photo here, or choose it:";
    const list = document.createElement("ul");
    list.className = "thumbs";
    const errors = document.createElement("ul");
    errors.className = "upload-problems";
    errors.setAttribute("role", "alert");
    input.replaceWith(zone);
    zone.append(hint, input, list, errors);
    input.addEventListener("change", () => render(zone));
    zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("dragging"); });
    zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("dragging");
      const dropped = Array.from(event.dataTransfer.files);
      setFiles(input, input.multiple ? Array.from(input.files).concat(dropped) : dropped.slice(0, 1));
    });
    if (input.files.length) render(zone);
  }

  function init(form) {
    form.querySelectorAll("input[type=file]").forEach(enhance);
  }

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!form.matches(".create-form") || !form.querySelector("input[type=file]")) return;
    event.preventDefault();
    const zones = Array.from(form.querySelectorAll(".dropzone"));
    if (zones.map(render).some((problems) => problems.length)) {
      zones[0].scrollIntoView({ block: "center" });
      return;
    }
    const button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    fetch(form.action || window.location.href, { method: "POST", body: new FormData(form), credentials: "same-origin" })
      .then((response) => response.text().then((html) => ({ response, html })))
      .then(({ response, html }) => {
        if (response.redirected) { window.location.assign(response.url); return; }
        const fresh = new DOMParser().parseFromString(html, "text/html").querySelector(".create-form");
        if (!fresh) { form.submit(); return; }  // not the form again (e.g. 429): show what the server says
        // The server's form (with its messages), holding the very file inputs the person filled.
        fresh.querySelectorAll("input[type=file]").forEach((input) => {
          const kept = form.querySelector(`input[type=file][name="${input.name}"]`);
          if (kept) input.replaceWith(kept.closest(".dropzone") || kept);
        });
        form.replaceWith(fresh);
        init(fresh);
        fresh.dispatchEvent(new Event("change", { bubbles: true }));
        const alert = fresh.querySelector("[role=alert], .field-error");
        if (alert) alert.scrollIntoView({ block: "center" });
      })
      .catch(() => form.submit());
  });

  document.querySelectorAll(".create-form").forEach(init);
})();
