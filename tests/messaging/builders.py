"""Events and deliveries as a broker would hand them to a consumer, for tests."""
import uuid
from decimal import Decimal

from messaging.brokers import event_bus
from messaging.consumer import Delivery, EventConsumer
from messaging.events import CONTENT_TYPE, Address, Envelope, OrderCancelled, PurchaseConfirmed, PurchaseLine
from messaging.models import DeadLetter
from messaging.topology import SUBSCRIPTIONS


def purchase(order_id: int = 1, *, customer_id: int = 7, total: str = "123.45", country: str = "DE") -> PurchaseConfirmed:
    return PurchaseConfirmed(
        order_id=order_id,
        order_number=f"ES-TEST-{order_id}",
        customer_id=customer_id,
        customer_email=f"customer{customer_id}@example.com",
        lines=[PurchaseLine(sku="MUG-01", name="Enamel mug", quantity=2, unit_price=Decimal(total) / 2)],
        total=Decimal(total),
        currency="EUR",
        shipping_address=Address(name="Ada", line1="1 Main St", city="Berlin", postal_code="10115", country=country),
    )


def cancellation(order_id: int = 1, *, customer_id: int = 7, total: str = "123.45") -> OrderCancelled:
    return OrderCancelled(order_id=order_id, order_number=f"ES-TEST-{order_id}", customer_id=customer_id,
                          reason="changed my mind", total=Decimal(total), currency="EUR")


def envelope(event, sequence: int = 1, event_id: uuid.UUID | None = None) -> Envelope:
    return Envelope(event=event, sequence=sequence, id=event_id or uuid.uuid4())


def delivery(body, *, content_type: str = CONTENT_TYPE, headers: dict | None = None, routing_key: str = "",
             redeliveries: int = 0) -> Delivery:
    if isinstance(body, Envelope):
        routing_key = routing_key or body.event.routing_key()
        body = body.to_json()
    return Delivery(body=body.encode() if isinstance(body, str) else body, content_type=content_type,
                    routing_key=routing_key, headers=headers or {}, redeliveries=redeliveries)


class RecordingRetryScheduler:
    """A fake subscription reader for `process`: remembers what `retry_later` would have put back, and when."""

    def __init__(self):
        self.scheduled = []

    def retry_later(self, delivery, *, attempt, delay_seconds):
        self.scheduled.append((delivery, attempt, delay_seconds))

    def redelivery(self, index: int = -1) -> Delivery:
        """The retried copy as the broker would deliver it later."""
        original, attempt, _ = self.scheduled[index]
        return Delivery(body=original.body, content_type=original.content_type, routing_key=original.routing_key,
                        headers={**original.headers, "x-eventshop-failed-attempts": attempt})


# --- dead letters and the in-memory broker ----------------------------------------------------------

UNREACHABLE_BROKER = "amqp://guest:guest@127.0.0.1:1//"  # nothing listens on port 1
FAIL_FAST_SECONDS = 5  # kombu's own reconnect attempts take 6 s; an operator must hear sooner


def dead_lettered(message: Delivery, *, handler_bug: bool = False) -> DeadLetter:
    """Feed `message` to the shipping consumer (with a buggy handler if asked) and return its dead letter."""
    consumer = EventConsumer(SUBSCRIPTIONS["shipping"])
    if handler_bug:
        consumer.handlers = {**consumer.handlers, "shop.purchase.confirmed": _buggy_handler}
    assert consumer.process(message, RecordingRetryScheduler()) == "dead_lettered"
    return DeadLetter.objects.using("shipping").latest("id")


def purchase_delivery(order_id: int) -> Delivery:
    return delivery(envelope(purchase(order_id=order_id)),
                    headers={"ce-type": "shop.purchase.confirmed", "correlation-id": f"order-{order_id}"})


def messages_on_queue(broker_url: str, consumer: str = "shipping") -> list[Delivery]:
    """Take (and ack) every message waiting on a consumer's queue, through the event-bus port."""
    taken = []
    with event_bus(broker_url) as bus:
        reader = bus.subscribe(SUBSCRIPTIONS[consumer], prefetch=100)
        while batch := reader.fetch(100, 0.2):
            reader.ack(batch)
            taken += batch
        reader.close()
    return taken


def in_memory_broker(settings) -> str:
    """kombu's in-process broker behind the embedded adapter, with the topology declared and emptied."""
    settings.BROKER_URL = "memory://"
    with event_bus("memory://") as bus:
        bus.declare(SUBSCRIPTIONS.values())
    for consumer in SUBSCRIPTIONS:
        messages_on_queue("memory://", consumer)  # the in-memory broker lives as long as the process
    return "memory://"


def _buggy_handler(envelope):
    raise KeyError("shipping_address")
