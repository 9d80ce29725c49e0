"""Sync vs async checkout with the real processes: in sync mode the API answers only once shipping and
loyalty have applied the order, and fails when loyalty is down; in async mode it does not notice.
"""
from tests.integration.stack import wait_until

PAUSE_LOYALTY = ("from messaging.models import ConsumerState; ConsumerState.objects.using('loyalty')"
                 ".update_or_create(consumer='loyalty', defaults={{'paused': {paused}}})")


def order_body(stack) -> dict:
    return {"items": [{"sku": stack.some_sku(), "quantity": 1}],
            "shipping_address": {"name": "Grace Hopper", "line1": "1 Navy Way", "city": "Arlington",
                                 "postal_code": "22201", "country": "US"}}


def test_a_sync_checkout_answers_after_shipping_and_loyalty_and_fails_while_loyalty_is_down(any_broker_stack):
    stack = any_broker_stack  # on each of the four brokers
    stack.start("web", SERVICE_BASE_URL=stack.base_url)
    for name in ("relay", "shipping", "loyalty"):
        stack.start(name)
    stack.manage("checkout_mode", "sync")

    order = stack.place_order()

    # No waiting: the API answered only once both services had applied the event.
    assert len(stack.shipments(order["id"])) == 1
    assert [entry["kind"] for entry in stack.points(order["id"])] == ["award"]
    # The broker delivers the same event too (same event id): whichever way came second, each consumer's
    # inbox took it as a duplicate and nothing happened twice.
    for consumer in ("shipping", "loyalty"):
        wait_until(lambda: sorted(outcome for (outcome,) in stack.backend.sql(
            consumer, "SELECT outcome FROM messaging_deliveryattempt WHERE consumer = ? AND subject = ? AND event_type = ?",
            (consumer, str(order["id"]), "shop.purchase.confirmed"))) == ["applied", "duplicate"],
            what=f"{consumer} to receive the event over HTTP and from the broker")
    assert len(stack.shipments(order["id"])) == 1 and len(stack.points(order["id"])) == 1

    stack.manage("shell", "-c", PAUSE_LOYALTY.format(paused=True))

    refused = stack.api("POST", "/api/orders/", json=order_body(stack))

    assert refused.status_code == 202, refused.text  # placed, but loyalty's call failed
    assert refused.json()["downstream_failure"]["service"] == "loyalty"
    refused_order_id = refused.json()["id"]
    assert stack.backend.sql("default", "SELECT number FROM shop_order WHERE id = ?", (refused_order_id,)) == [
        (refused.json()["number"],)]

    stack.manage("checkout_mode", "async")
    accepted = stack.api("POST", "/api/orders/", json=order_body(stack))

    assert accepted.status_code == 201, accepted.text

    # Loyalty comes back and, from the broker, completes both orders.
    stack.manage("shell", "-c", PAUSE_LOYALTY.format(paused=False))
    for order_id in (refused_order_id, accepted.json()["id"]):
        wait_until(lambda: stack.points(order_id), what=f"loyalty to credit order {order_id} once it is back")
