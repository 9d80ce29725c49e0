"""The operations view: a traffic spike makes the queues grow while the shop stays fast, then drain."""
import time

from tests.e2e.conftest import log_in, screenshot
from tests.integration.stack import wait_until


def _state(page) -> dict:
    # The same JSON the page polls to redraw itself.
    return page.evaluate("fetch('/ops/state.json').then(response => response.json())")


def test_a_traffic_spike_makes_the_queue_depth_chart_rise_and_fall(page, embedded_stack):
    stack = embedded_stack
    stack.env["METRICS_SAMPLE_SECONDS"] = "1"
    # A shipping service slower than the spike (the "slow down" control): on a fast machine the
    # consumers would otherwise keep up and the queue would hardly grow.
    stack.manage("fault", "shipping", "--slow-ms", "60")
    stack.start_all()
    stack.start("worker#1")
    log_in(page, stack.base_url, "staff")
    page.goto(f"{stack.base_url}/ops/")

    page.click("button:has-text('Start the spike')")
    page.wait_for_selector("text=Traffic spike")

    peak = wait_until(lambda: (depth := _state(page)["queues"]["shipping.events"]["ready"]) >= 10 and depth,
                      timeout=60, interval=0.5, what="the shipping queue to grow")
    page.wait_for_timeout(2500)  # one refresh of the page itself
    screenshot(page, "operations-during-spike")
    wait_until(lambda: (state := _state(page))["scenario"] and not state["scenario"]["running"],
               timeout=120, interval=1, what="the spike to finish")
    wait_until(lambda: _state(page)["queues"]["shipping.events"]["ready"] == 0, timeout=240, interval=1,
               what="the consumers to drain the queue")
    time.sleep(2.5)  # one more sample after the drain

    [series] = [s for s in _state(page)["charts"]["depth"] if "shipping.events" in s["key"]]
    values = [value for _, value in series["points"]]
    assert max(values) >= peak * 0.5, "the chart shows the rise"
    assert values[-1] == 0, "and the fall"
    page.wait_for_selector(f"#chart-depth path[data-series='{series['name']}']")
    screenshot(page, "operations")
