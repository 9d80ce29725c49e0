// /ops/brokers/: while a comparison runs, poll its progress every 2 s and redraw the bars; reload
// the page once a new run's results are written.
(function () {
  "use strict";
  const box = document.querySelector("[data-progress]");
  if (!box) return;
  const list = box.querySelector("[data-progress-list]");
  const state = box.querySelector("[data-progress-state]");
  const button = document.querySelector("[data-start-run]");

  function draw(progress) {
    if (!progress) return;
    if (state) state.textContent = progress.state + (progress.error ? " — " + progress.error : "");
    if (button) button.disabled = progress.state === "running";
    list.innerHTML = "";
    for (const [broker, step] of Object.entries(progress.brokers || {})) {
      const item = document.createElement("li");
      item.innerHTML = '<span class="progress-name"></span> <progress></progress> <span class="small"></span>';
      item.children[0].textContent = broker;
      item.children[1].max = step.total || 1;
      item.children[1].value = step.done;
      item.children[2].textContent = `${step.done}/${step.total} ${step.step}`;
      list.appendChild(item);
    }
  }

  async function poll() {
    try {
      const response = await fetch(box.dataset.progressUrl, { headers: { Accept: "application/json" } });
      const data = await response.json();
      draw(data.progress);
      if (data.results_run_id && data.results_run_id !== box.dataset.resultsRun && data.progress && data.progress.state !== "running") {
        window.location.reload();
        return;
      }
      if (data.progress && data.progress.state === "running") setTimeout(poll, 2000);
    } catch (error) {
      setTimeout(poll, 5000);
    }
  }

  if (box.dataset.state === "running") poll();
  document.addEventListener("submit", () => setTimeout(poll, 1500));
})();
