// Refresh an order's "What happened so far" section without reloading the page.
// The partial says when nothing more is coming (data-settled="true"); we also give up after 2 minutes.
(function () {
  "use strict";
  var POLL_EVERY_MS = 2000;
  var GIVE_UP_AFTER_MS = 2 * 60 * 1000;

  var box = document.getElementById("order-journey");
  if (!box || !box.dataset.journeyUrl) return;
  var startedAt = Date.now();

  function settled() {
    var journey = box.querySelector(".journey");
    return journey && journey.dataset.settled === "true";
  }

  function stop() {
    var note = box.querySelector(".live-note");
    if (note) note.hidden = true;
  }

  function poll() {
    if (settled()) return stop();
    if (Date.now() - startedAt > GIVE_UP_AFTER_MS) return stop();
    fetch(box.dataset.journeyUrl, { headers: { "X-Requested-With": "fetch" }, cache: "no-store", credentials: "same-origin" })
      .then(function (response) {
        // A redirect means the session ended (login page): keep what we show and stop.
        if (response.redirected || !response.ok) throw new Error("journey refresh: " + response.status);
        return response.text();
      })
      .then(function (html) {
        box.innerHTML = html;
        setTimeout(poll, POLL_EVERY_MS);
      })
      .catch(function () {
        // A network blip: try again on the next tick unless time is up.
        if (Date.now() - startedAt > GIVE_UP_AFTER_MS) return stop();
        setTimeout(poll, POLL_EVERY_MS);
      });
  }

  setTimeout(poll, POLL_EVERY_MS);
})();
