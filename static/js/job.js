// The job page while it waits and once it is done: elapsed time, the tab title, an optional
// browser notification, polling paused while the tab is hidden; then Copy link and Share.
(function () {
  const baseTitle = document.title;
  let paused = null;
  let wasWaiting = false;

  function seconds(progress) {
    return Math.max(0, Math.round(Date.now() / 1000 - Number(progress.dataset.started)));
  }

  function tick() {
    const progress = document.querySelector("[data-job-progress]");
    if (!progress) return;
    const elapsed = seconds(progress);
    const label = progress.querySelector("[data-elapsed]");
    if (label) label.textContent = `${elapsed} s`;
    const typical = Number(progress.dataset.typical || 0);
    const share = typical ? ` of ~${typical} s` : "";
    document.title = `⏳ ${elapsed} s${share} · ${baseTitle}`;
  }

  function notifyButton(root) {
    const button = root.querySelector("[data-notify]");
    if (!button || button.dataset.ready || !("Notification" in window) || Notification.permission !== "default") return;
    button.dataset.ready = "1";
    button.hidden = false;
    button.addEventListener("click", () => {
      Notification.requestPermission().then(() => { button.hidden = true; });
    });
  }

  function finished(layout) {
    const label = layout.dataset.statusLabel;
    const kind = layout.dataset.kindLabel;
    document.title = `${layout.dataset.status === "succeeded" ? "✓" : "✕"} ${kind} · ${label} · Dream Pixel`;
    if (wasWaiting && document.hidden && "Notification" in window && Notification.permission === "granted") {
      const text = layout.dataset.status === "succeeded" ? `Your ${kind.toLowerCase()} is ready.` : `Your ${kind.toLowerCase()} did not finish; the credits are back.`;
      const note = new Notification("Dream Pixel", { body: text, tag: layout.dataset.url });
      note.addEventListener("click", () => { window.focus(); note.close(); });
    }
  }

  function init(root) {
    const layout = document.querySelector("[data-job-page]");
    if (!layout) return;
    if (document.querySelector("[data-job-progress]")) {
      wasWaiting = true;
      tick();
      notifyButton(root);
    } else if (wasWaiting) {
      // Once: the final answer loads more than one element (the layout, the header's balance).
      finished(layout);
      wasWaiting = false;
    }
    const fresh = (button) => !button.dataset.ready && (button.dataset.ready = "1");
    root.querySelectorAll("[data-copy]").forEach((button) => fresh(button) && button.addEventListener("click", () => {
      const field = document.getElementById(button.dataset.copy);
      const said = button.parentElement.querySelector("[data-copied]");
      navigator.clipboard.writeText(field.value).then(
        () => { if (said) said.textContent = "Link copied."; },
        () => { field.select(); if (said) said.textContent = "Press Ctrl-C to copy."; },
      );
    }));
    root.querySelectorAll("[data-share]").forEach((button) => {
      if (!navigator.share || !fresh(button)) return;
      button.hidden = false;
      button.addEventListener("click", () => {
        const url = document.getElementById(button.dataset.share).value;
        navigator.share({ title: button.dataset.shareTitle, url }).catch(() => {});
      });
    });
  }

  // No requests from a hidden tab: the poll is held back and made as soon as it is seen again.
  // Unless the person asked to be notified: then it keeps polling (at its slower pace) to know.
  const notifying = () => "Notification" in window && Notification.permission === "granted";
  document.addEventListener("htmx:beforeRequest", (event) => {
    if (event.target.matches("[data-job-progress]") && document.hidden && !notifying()) {
      event.preventDefault();
      paused = event.target;
    }
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && paused && paused.isConnected) {
      const target = paused;
      paused = null;
      window.htmx.trigger(target, "dp:resume");
    }
  });

  setInterval(tick, 1000);
  init(document);
  document.addEventListener("htmx:load", (event) => init(event.target));
})();
