"""The same guarantees on each of the four brokers the port supports: embedded, RabbitMQ, ActiveMQ, SQS.

One deployment per broker plays every scenario in turn (starting a stack is the slow part), with
the real web, relay and consumer processes. docs/brokers.md says where a broker makes the design
work differently; the delivery limit (the broker's own dead-lettering) is proven per adapter in
tests/messaging/brokers/, since provoking ten crashes here would cost minutes per broker.
"""
import math
import uuid
from datetime import datetime
from decimal import Decimal

from messaging.events import CONTENT_TYPE
from tests.integration.stack import publish_raw, queue_depth, wait_until
from tests.messaging.builders import cancellation, envelope, purchase


def attempts(stack, consumer: str, alias: str | None = None, event_id: str | None = None) -> list[tuple]:
    """(event id, attempt, outcome, created at) of a consumer's attempts, oldest first."""
    rows = stack.backend.sql(alias or consumer, "SELECT event_id, attempt, outcome, created_at "
                             "FROM messaging_deliveryattempt WHERE consumer = ? ORDER BY id", (consumer,))
    # SQLite keeps UUIDs as bare hex, PostgreSQL as UUIDs: compare them in one form.
    rows = [(str(uuid.UUID(str(row[0]))) if row[0] else "", *row[1:]) for row in rows]
    return [row for row in rows if event_id is None or row[0] == event_id]


def outbox_event(stack, order_id: int, event_type: str) -> tuple[str, str, str]:
    [(event_id, body, routing_key)] = stack.backend.sql(
        "default", "SELECT event_id, body, routing_key FROM messaging_outboxmessage WHERE subject = ? AND event_type = ?",
        (str(order_id), event_type))
    return str(uuid.UUID(str(event_id))), body, routing_key


def as_datetime(value) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def test_every_guarantee_holds_on_each_broker(any_broker_stack):
    stack = any_broker_stack
    url = stack.backend.broker_url
    stack.env["CONSUMER_RETRY_BASE_SECONDS"] = "1"
    stack.manage("fault", "shipping", "--crash-after-commit")  # once, on its first message
    stack.manage("fault", "loyalty", "--fail-first-attempts", "2")  # every message fails twice, transiently
    stack.start_all()

    # A consumer killed between its commit and its ack gets the message again, and changes nothing.
    first = stack.place_order()
    assert stack.wait_for_exit("shipping", timeout=60) == -9
    assert len(stack.shipments(first["id"])) == 1
    stack.start("shipping")
    first_purchase_id = outbox_event(stack, first["id"], "shop.purchase.confirmed")[0]
    wait_until(lambda: ("duplicate" in [row[2] for row in attempts(stack, "shipping", event_id=first_purchase_id)]),
               timeout=60, what="the redelivered copy")
    assert len(stack.shipments(first["id"])) == 1

    # Publish/subscribe and custom routing: both orders reach shipping and loyalty, only the large
    # one reaches the bonus subscriber; the shop hears back.
    large = stack.place_order([{"sku": stack.some_sku(min_price=200), "quantity": 1}])
    standard = stack.place_order([{"sku": stack.some_sku(max_price=50), "quantity": 1}])
    ledger = wait_until(lambda: len(stack.points(large["id"])) == 2 and stack.points(large["id"]), timeout=60,
                        what="the large order's award and bonus")
    assert sorted((entry["kind"], entry["points"]) for entry in ledger) == [
        ("award", math.floor(Decimal(large["total"]))), ("bonus", math.floor(Decimal(large["total"]) / 10))]
    wait_until(lambda: stack.points(standard["id"]), timeout=60, what="the standard order's points")
    assert [entry["kind"] for entry in stack.points(standard["id"])] == ["award"]
    wait_until(lambda: stack.order(large["id"])["status"] == "fulfilled", timeout=60, what="the shop to hear back")
    assert len(stack.shipments(large["id"])) == 1 and len(stack.shipments(standard["id"])) == 1

    # Retries back off (0.5-1 s, then 1-2 s) without holding up the messages behind them.
    histories = [attempts(stack, "loyalty", event_id=outbox_event(stack, order["id"], "shop.purchase.confirmed")[0])
                 for order in (large, standard)]
    for history in histories:
        assert [(attempt, outcome) for _, attempt, outcome, _ in history] == [(1, "retry"), (2, "retry"), (3, "applied")]
        times = [as_datetime(row[3]) for row in history]
        assert (times[1] - times[0]).total_seconds() >= 0.5 and (times[2] - times[1]).total_seconds() >= 1.0
    assert as_datetime(histories[1][0][3]) < as_datetime(histories[0][2][3]), "the next message went ahead"

    # A duplicate has one effect.
    large_purchase_id, body, routing_key = outbox_event(stack, large["id"], "shop.purchase.confirmed")
    publish_raw(url, body, routing_key)
    for consumer in ("shipping", "loyalty", "loyalty-bonus"):
        alias = "loyalty" if consumer == "loyalty-bonus" else consumer
        wait_until(lambda: "duplicate" in [row[2] for row in attempts(stack, consumer, alias, large_purchase_id)],
                   timeout=30, what=f"{consumer} to skip the duplicate")
    assert len(stack.shipments(large["id"])) == 1 and len(stack.points(large["id"])) == 2

    # A cancellation that arrives before its purchase nets to nothing.
    order_id = 900_000 + uuid.uuid4().int % 99_999
    purchased = envelope(purchase(order_id=order_id), sequence=1)
    cancelled = envelope(cancellation(order_id=order_id), sequence=2)
    publish_raw(url, cancelled.to_json(), cancelled.event.routing_key())
    publish_raw(url, purchased.to_json(), purchased.event.routing_key())
    wait_until(lambda: {str(purchased.id), str(cancelled.id)} <= {
        row[0] for row in attempts(stack, "shipping") if row[2] in ("early", "stale")},
        timeout=60, what=f"shipping to apply the cancellation early and skip the purchase as stale ({order_id})")
    # Loyalty's retries (the fault above) may bring the two back in either order: the effect nets out all the same.
    wait_until(lambda: {str(purchased.id), str(cancelled.id)} <= {
        row[0] for row in attempts(stack, "loyalty") if row[2] in ("applied", "early", "stale")},
        timeout=60, what=f"loyalty to take both events of order {order_id}")
    [shipment] = stack.shipments(order_id)
    assert shipment["status"] == "cancelled" and shipment["cancelled_before_purchase"]
    assert sum(entry["points"] for entry in stack.points(order_id)) == 0

    # A poison message among healthy ones is dead-lettered with its reason; the rest flows on.
    publish_raw(url, b"\x00\x01 this is not json", "shop.purchase.confirmed.DE.standard", content_type=CONTENT_TYPE)
    after_poison = stack.place_order()
    wait_until(lambda: stack.shipments(after_poison["id"]) and stack.points(after_poison["id"]), timeout=60,
               what="the order after the poison")
    for alias, consumer in (("shipping", "shipping"), ("loyalty", "loyalty")):
        letters = wait_until(lambda: stack.backend.sql(
            alias, "SELECT reason, body FROM messaging_deadletter WHERE consumer = ?", (consumer,)), what="the dead letter")
        assert [(reason, bytes(body)) for reason, body in letters] == [("not_json", b"\x00\x01 this is not json")]
        assert stack.is_running(consumer)

    # An event no subscriber is bound for is kept where an operator sees it, not dropped.
    publish_raw(url, b'{"not": "for anyone"}', "warehouse.stock.counted", content_type="application/json")
    assert wait_until(lambda: queue_depth(url, "shop.events.unrouted")["ready"], timeout=30,
                      what="the unroutable event to be kept") == 1
