"""A staff user watches the consumers: a poison message shows up in dead letters and is dealt with."""
from tests.e2e.conftest import log_in, screenshot
from tests.integration.stack import publish_raw, wait_until


def test_staff_sees_a_poison_message_in_dead_letters_inspects_it_and_discards_it(page, embedded_stack):
    stack = embedded_stack
    stack.start_all()
    healthy = stack.place_order()
    wait_until(lambda: stack.shipments(healthy["id"]), what="the healthy order's shipment")
    log_in(page, stack.base_url, "staff")
    page.goto(f"{stack.base_url}/dashboards/shipping/")
    assert page.inner_text("[data-pending-dead-letters]").strip() == "0"

    publish_raw(stack.backend.broker_url, b"{ this is not json", "shop.purchase.confirmed.DE.standard")

    # The panel refreshes by itself: the dead letter appears without a reload.
    page.wait_for_selector("tr[data-dead-letter]", timeout=20_000)
    row = page.locator("tr[data-dead-letter]").first
    assert "not_json" in row.inner_text()
    screenshot(page, "shipping-dashboard")
    row.locator("a:has-text('Inspect')").click()
    assert "{ this is not json" in page.inner_text("main")
    page.go_back()
    page.locator("tr[data-dead-letter]").first.locator("button:has-text('Discard')").click()

    page.wait_for_selector("text=Discarded")
    assert page.inner_text("[data-pending-dead-letters]").strip() == "0"
    assert stack.backend.sql("shipping", "SELECT status FROM messaging_deadletter") == [("discarded",)]


def test_staff_replays_a_dead_letter_after_the_fault_is_gone_and_the_order_is_shipped(page, embedded_stack):
    stack = embedded_stack
    stack.env["CONSUMER_MAX_ATTEMPTS"] = "2"
    stack.env["CONSUMER_RETRY_BASE_SECONDS"] = "0.2"
    stack.manage("fault", "shipping", "--fail-first-attempts", "99")
    stack.start_all()
    order = stack.place_order()
    wait_until(lambda: stack.backend.sql("shipping", "SELECT 1 FROM messaging_deadletter"), what="the dead letter")
    stack.manage("fault", "shipping", "--clear")
    heartbeat = "SELECT last_heartbeat_at FROM messaging_consumerstate WHERE consumer = 'shipping'"
    before = stack.backend.sql("shipping", heartbeat)
    wait_until(lambda: stack.backend.sql("shipping", heartbeat) != before, timeout=15, what="the consumer to see the fault cleared")
    log_in(page, stack.base_url, "staff")
    page.goto(f"{stack.base_url}/dashboards/shipping/")

    row = page.locator("tr[data-dead-letter]").first
    assert "retries_exhausted" in row.inner_text()
    row.locator("button:has-text('Replay')").click()

    wait_until(lambda: stack.shipments(order["id"]), what="the replayed purchase to be shipped")
    assert stack.backend.sql("shipping", "SELECT status FROM messaging_deadletter") == [("replayed",)]

    page.goto(f"{stack.base_url}/dashboards/loyalty/")
    assert "award" in page.inner_text("main")  # loyalty never failed: it credited the order long ago
    screenshot(page, "loyalty-dashboard")
