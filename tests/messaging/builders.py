"""Events and deliveries as a broker would hand them to a consumer, for tests."""
import uuid
from decimal import Decimal

from messaging.consumer import Delivery
from messaging.events import CONTENT_TYPE, Address, Envelope, OrderCancelled, PurchaseConfirmed, PurchaseLine


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


def delivery(body, *, content_type: str = CONTENT_TYPE, headers: dict | None = None, routing_key: str = "") -> Delivery:
    if isinstance(body, Envelope):
        routing_key = routing_key or body.event.routing_key()
        body = body.to_json()
    return Delivery(body=body.encode() if isinstance(body, str) else body, content_type=content_type,
                    routing_key=routing_key, headers=headers or {})


class RecordingRetryScheduler:
    """A fake broker-side retry: remembers what would have been put back, and when."""

    def __init__(self):
        self.scheduled = []

    def schedule(self, delivery, *, attempt, delay_seconds):
        self.scheduled.append((delivery, attempt, delay_seconds))

    def redelivery(self, index: int = -1) -> Delivery:
        """The retried copy as the broker would deliver it later."""
        original, attempt, _ = self.scheduled[index]
        return Delivery(body=original.body, content_type=original.content_type, routing_key=original.routing_key,
                        headers={**original.headers, "x-eventshop-failed-attempts": attempt})
