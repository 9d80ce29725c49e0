// Keep the consumer panels of a staff dashboard live: fetch each panel's partial every 2 s, swap it
// in, and redraw its throughput chart. The panel's controls are plain POST forms that redirect back,
// so they work whatever was swapped in; the one listener below (on document) asks for confirmation
// where a form says data-confirm.
(function () {
  "use strict";
  var POLL_EVERY_MS = 2000;

  function drawChart(box) {
    var data = box.querySelector('script[type="application/json"]');
    var target = box.querySelector("[data-chart-target]");
    if (!data || !target || !window.EventshopCharts) return;
    window.EventshopCharts.line(target, JSON.parse(data.textContent));
  }

  function busy(box) {
    // Do not pull the panel from under a pointer about to click, or a selection being copied.
    if (box.querySelector("form:hover, a:hover")) return true;
    var selection = window.getSelection();
    return selection && !selection.isCollapsed && box.contains(selection.anchorNode);
  }

  function poll(box) {
    if (document.hidden || box.dataset.submitting) return setTimeout(poll, POLL_EVERY_MS, box);
    fetch(box.dataset.panelUrl, { headers: { "X-Requested-With": "fetch" }, cache: "no-store", credentials: "same-origin" })
      .then(function (response) {
        // A redirect means the session ended (login page): keep what we show.
        if (response.redirected || !response.ok) throw new Error("panel refresh: " + response.status);
        return response.text();
      })
      .then(function (html) {
        if (busy(box)) return;
        var scrolled = {};
        box.querySelectorAll("[data-keep-scroll]").forEach(function (el) { scrolled[el.dataset.keepScroll] = el.scrollTop; });
        box.innerHTML = html;
        box.querySelectorAll("[data-keep-scroll]").forEach(function (el) { el.scrollTop = scrolled[el.dataset.keepScroll] || 0; });
        box.classList.remove("stale");
        drawChart(box);
      })
      .catch(function () {
        box.classList.add("stale");
      })
      .then(function () {
        setTimeout(poll, POLL_EVERY_MS, box);
      });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var box = form.closest("[data-panel-url]");
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      return;
    }
    if (box) box.dataset.submitting = "true"; // the page is about to change: stop swapping
  });

  var boxes = Array.prototype.slice.call(document.querySelectorAll("[data-panel-url]"));
  boxes.forEach(function (box) {
    drawChart(box);
    setTimeout(poll, POLL_EVERY_MS, box);
  });
  var resizing;
  window.addEventListener("resize", function () {
    clearTimeout(resizing);
    resizing = setTimeout(function () { boxes.forEach(drawChart); }, 150);
  });
})();
