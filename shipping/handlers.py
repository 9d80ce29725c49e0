"""Docs: docs/architecture.md#shipping. Shipping's subscriptions: event type -> handler."""
from messaging.events import Envelope, OrderCancelled, PurchaseConfirmed
from shipping.services import shipment_cancel, shipment_create


def shipment_create_for_purchase(envelope: Envelope) -> None:
    shipment_create(purchase=envelope.event)


def shipment_cancel_for_order(envelope: Envelope) -> None:
    event: OrderCancelled = envelope.event
    shipment_cancel(order_id=event.order_id)


HANDLERS = {
    PurchaseConfirmed.type: shipment_create_for_purchase,
    OrderCancelled.type: shipment_cancel_for_order,
}
