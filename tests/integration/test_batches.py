"""A consumer's batch against the real processes: killed before its commit or between its commit and
its acks, nothing is lost and nothing applied twice; a poison message in it is dead-lettered alone.

The consumer handles up to FETCH_BATCH deliveries per transaction (messaging/consumer/runtime.py).
"""
import time
import uuid

from messaging.brokers import OutgoingMessage, event_bus
from messaging.events import CONTENT_TYPE, Envelope
from messaging.topology import SUBSCRIPTIONS
from tests.integration.stack import wait_until
from tests.messaging.builders import purchase

FIRST_ORDER = 900_000  # far from the orders the demo's seed could make


def preload(stack, order_ids, *, poison_after: int | None = None) -> None:
    """Purchases straight onto shipping's queue, as a burst the consumer takes in batches."""
    messages = []
    for order_id in order_ids:
        envelope = Envelope(event=purchase(order_id=order_id), sequence=1)
        messages.append(OutgoingMessage(message_id=str(envelope.id), routing_key=envelope.type,
                                        body=envelope.to_json().encode(), content_type=CONTENT_TYPE,
                                        headers={"ce-type": envelope.type}))
        if order_id == poison_after:
            messages.append(OutgoingMessage(message_id=str(uuid.uuid4()), routing_key="shop.purchase.confirmed",
                                            body=b"{not json", content_type=CONTENT_TYPE))
    with event_bus(stack.backend.broker_url) as bus:
        bus.declare(SUBSCRIPTIONS.values())
        result = bus.send_to_queue(SUBSCRIPTIONS["shipping"].queue_name, messages)
    assert result.error is None, result.error


def shipments_per_order(stack) -> dict[int, int]:
    rows = stack.backend.sql("shipping", "SELECT order_id, COUNT(*) FROM shipping_shipment WHERE order_id >= ? "
                                         "GROUP BY order_id", (FIRST_ORDER,))
    return {int(order_id): count for order_id, count in rows}


def outcomes(stack) -> dict[str, int]:
    rows = stack.backend.sql("shipping", "SELECT outcome, COUNT(*) FROM messaging_deliveryattempt "
                                         "WHERE consumer = 'shipping' GROUP BY outcome")
    return dict(rows)


def shipment_events(stack) -> int:
    [(count,)] = stack.backend.sql("shipping", "SELECT COUNT(*) FROM messaging_outboxmessage "
                                               "WHERE event_type = 'shipping.shipment.created'")
    return count


def test_a_consumer_killed_in_the_middle_of_a_batch_before_its_commit_loses_nothing_and_applies_nothing_twice(stack):
    stack.env["BROKER_VISIBILITY_TIMEOUT_SECONDS"] = "2"  # the embedded broker's redelivery delay
    orders = range(FIRST_ORDER, FIRST_ORDER + 30)
    preload(stack, orders)
    stack.manage("fault", "shipping", "--slow-ms", "250")  # a batch takes seconds: time to kill it midway
    stack.start("shipping")
    wait_until(lambda: stack.backend.sql("shipping", "SELECT COUNT(*) FROM messaging_inboxmessage")[0][0] == 0
               and stack.backend.sql("shipping", "SELECT COUNT(*) FROM messaging_consumerstate "
                                                 "WHERE last_heartbeat_at IS NOT NULL")[0][0] == 1,
               what="the consumer to start")
    time.sleep(2.5)  # inside its first batch: some handlers have run, nothing is committed
    stack.stop("shipping", kill=True)
    applied_before_kill = sum(shipments_per_order(stack).values())
    assert applied_before_kill < len(orders)

    stack.manage("fault", "shipping", "--clear")
    stack.start("shipping")
    wait_until(lambda: len(shipments_per_order(stack)) == len(orders), timeout=60, what="every shipment")
    wait_until(lambda: outcomes(stack).get("applied") == len(orders), what="every attempt")
    assert set(shipments_per_order(stack).values()) == {1}
    assert outcomes(stack).get("applied") == len(orders)
    assert shipment_events(stack) == len(orders)


def test_a_consumer_killed_after_a_batch_committed_and_before_its_acks_gets_the_batch_again_and_changes_nothing(stack):
    stack.env["BROKER_VISIBILITY_TIMEOUT_SECONDS"] = "2"
    orders = range(FIRST_ORDER, FIRST_ORDER + 20)
    preload(stack, orders)
    stack.manage("fault", "shipping", "--crash-after-commit")
    stack.start("shipping")

    assert stack.wait_for_exit("shipping") == -9  # SIGKILL: the batch committed, never acked
    committed = sum(shipments_per_order(stack).values())
    assert committed >= 1
    stack.start("shipping")

    wait_until(lambda: len(shipments_per_order(stack)) == len(orders), timeout=60, what="every shipment")
    wait_until(lambda: outcomes(stack).get("duplicate", 0) == committed, timeout=60, what="the redelivered batch")
    assert set(shipments_per_order(stack).values()) == {1}
    assert outcomes(stack)["applied"] == len(orders)
    assert shipment_events(stack) == len(orders)


def test_a_poison_message_inside_a_batch_is_dead_lettered_alone_and_the_rest_of_the_batch_is_applied(stack):
    orders = range(FIRST_ORDER, FIRST_ORDER + 10)
    preload(stack, orders, poison_after=FIRST_ORDER + 4)
    stack.start("shipping")

    wait_until(lambda: len(shipments_per_order(stack)) == len(orders), what="every shipment")
    letters = wait_until(lambda: stack.backend.sql("shipping", "SELECT reason FROM messaging_deadletter"),
                         what="the dead letter")
    assert letters == [("not_json",)]
    assert outcomes(stack)["applied"] == len(orders)
