// The operations view, live: polls /ops/state.json every 2 s and updates the numbers and charts in place.
// The server renders the same numbers into the page, so without JavaScript it still reads correctly.
(function () {
  "use strict";
  var POLL_EVERY_MS = 2000;
  var config = document.getElementById("ops-config");
  var initial = document.getElementById("ops-state");
  if (!config || !initial) return;
  var liveNote = document.querySelector("[data-live-note]");
  var liveText = document.querySelector("[data-live-text]");

  function text(root, selector, value) {
    var node = root && root.querySelector(selector);
    if (node) node.textContent = value === null || value === undefined ? "—" : String(value);
    return node;
  }

  function drawCharts(state) {
    if (!window.EventshopCharts) return;
    var depth = document.getElementById("chart-depth");
    var rates = document.getElementById("chart-rates");
    if (depth) window.EventshopCharts.line(depth, { series: state.charts.depth });
    if (rates) window.EventshopCharts.line(rates, { series: state.charts.rates });
  }

  function updateFlow(state) {
    text(document, '[data-field="orders-last-minute"]', state.shop.orders_last_minute);
    text(document, '[data-field="outbox-unpublished"]', state.outbox.unpublished);
    text(document, '[data-field="outbox-databases"]', "(" + state.outbox.databases.map(function (db) {
      return db.database + " " + db.unpublished;
    }).join(", ") + ")");
    text(document, '[data-field="relay-lag"]', state.outbox.lag_seconds);
    text(document, '[data-field="relay-rate"]', state.relay.published_per_second);
    var relay = document.querySelector("[data-relay]");
    if (relay) {
      relay.classList.toggle("is-warning", !state.relay.sampling);
      text(relay, '[data-field="relay-status"]', state.relay.sampling
        ? "sweeps the outboxes for rows left unsent"
        : "no samples lately: is manage.py relay running?");
    }
    var brokerError = document.querySelector("[data-broker-error]");
    if (brokerError) {
      brokerError.hidden = !state.broker.error;
      text(brokerError, '[data-field="broker-error"]', state.broker.error);
    }
    Object.keys(state.queues).forEach(function (name) {
      var queue = state.queues[name];
      var box = document.querySelector('[data-queue="' + CSS.escape(name) + '"]');
      text(box, '[data-field="ready"]', queue.ready);
      text(box, '[data-field="consumers"]', queue.consumers);
      text(box, '[data-field="dead"]', queue.dead);
    });
    Object.keys(state.consumers).forEach(function (name) {
      var consumer = state.consumers[name];
      var box = document.querySelector('[data-consumer="' + CSS.escape(name) + '"]');
      if (box) {
        box.classList.remove("status-alive", "status-paused", "status-down", "status-unknown");
        box.classList.add("status-" + consumer.status);
        text(box, '[data-field="status"]', consumer.status_text);
        text(box, '[data-field="handled"]', consumer.handled_last_minute);
        text(box, '[data-field="outcomes"]', "(" + consumer.last_minute_text + ")");
        text(box, '[data-field="heartbeat"]', consumer.heartbeat_text);
        text(box, '[data-field="dead-letters"]', consumer.pending_dead_letters);
        var faults = text(box, '[data-field="faults"]', consumer.faults_text);
        if (faults) faults.classList.toggle("warn", consumer.faults_active);
      }
      var badge = document.querySelector('[data-consumer-status="' + CSS.escape(name) + '"]');
      if (badge) {
        badge.className = "status-badge status-" + consumer.status;
        badge.textContent = consumer.status_text;
      }
      text(document, '[data-consumer-faults="' + CSS.escape(name) + '"]', consumer.faults_text);
    });
  }

  function updateScenario(state) {
    var box = document.querySelector("[data-scenario]");
    if (!box) return;
    box.hidden = !state.scenario;
    if (state.scenario) text(box, '[data-field="scenario-text"]', state.scenario.text);
  }

  function updateRecentOrders(state) {
    var list = document.querySelector("[data-recent-orders]");
    if (!list) return;
    list.textContent = "";
    if (!state.recent_orders.length) list.textContent = "none yet";
    state.recent_orders.forEach(function (order, index) {
      if (index) list.appendChild(document.createTextNode(" · "));
      var link = document.createElement("a");
      link.href = order.journey_url;
      link.textContent = "#" + order.id;
      link.title = order.number;
      list.appendChild(link);
    });
  }

  // The checkout panel holds a form: replace it only when it changed (ignoring the per-render CSRF
  // token), and never while someone is using it.
  function withoutToken(html) {
    return (html || "").replace(/name="csrfmiddlewaretoken" value="[^"]*"/g, "");
  }

  function updateCheckoutLatency(state) {
    var box = document.getElementById("checkout-latency-box");
    if (!box || !state.checkout_latency_html) return;
    if (box.contains(document.activeElement) && document.activeElement !== box) return;
    if (withoutToken(box.innerHTML.trim()) === withoutToken(state.checkout_latency_html.trim())) return;
    box.innerHTML = state.checkout_latency_html;
  }

  function render(state) {
    latest = state;
    updateFlow(state);
    updateScenario(state);
    updateRecentOrders(state);
    updateCheckoutLatency(state);
    drawCharts(state);
  }

  function showLive(message, ok) {
    if (!liveNote) return;
    liveNote.hidden = false;
    liveNote.classList.toggle("warn", !ok);
    if (liveText) liveText.textContent = message;
  }

  function poll() {
    if (document.hidden) return setTimeout(poll, POLL_EVERY_MS);
    fetch(config.dataset.stateUrl, { headers: { Accept: "application/json" }, cache: "no-store", credentials: "same-origin" })
      .then(function (response) {
        // A redirect means the session ended (login page): say so and keep what we show.
        if (response.redirected || !response.ok) throw new Error("state " + response.status);
        return response.json();
      })
      .then(function (state) {
        render(state);
        showLive("updated " + new Date(state.generated_at).toLocaleTimeString(), true);
      })
      .catch(function () {
        showLive("live updates failed; retrying", false);
      })
      .then(function () {
        setTimeout(poll, POLL_EVERY_MS);
      });
  }

  var latest = JSON.parse(initial.textContent);
  drawCharts(latest);
  window.addEventListener("resize", function () { drawCharts(latest); });
  showLive("updating every 2 s", true);
  setTimeout(poll, POLL_EVERY_MS);
})();
