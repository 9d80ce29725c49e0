"""What the shop hears back about an order (called by shop/handlers.py inside the consumer's transaction)."""
from __future__ import annotations

import dataclasses
import json

from messaging.events import (
    Envelope,
    PointsAwarded,
    PointsReversed,
    ShipmentCancelled,
    ShipmentCreated,
    ShippingLabelRendered,
)
from shop.models import Order, OrderJourneyStep


def order_journey_record(*, envelope: Envelope, summary: str) -> Order:
    """Add a step to an order's journey and derive the order's fulfilment fields from all its steps.

    Deriving from the whole set, rather than applying each event as a change, makes the result the
    same whatever order the events arrive in: the shop's listener needs no sequencing.
    """
    order = Order.objects.select_for_update().get(pk=int(envelope.subject))
    OrderJourneyStep.objects.create(
        order=order,
        event_id=envelope.id,
        event_type=envelope.type,
        source=envelope.source,
        summary=summary,
        data=json.loads(json.dumps(dataclasses.asdict(envelope.event), default=str)),
        occurred_at=envelope.time,
    )
    steps = list(order.journey_steps.all())
    of_type = lambda event_type: [step.data for step in steps if step.event_type == event_type]  # noqa: E731
    if of_type(ShipmentCancelled.type):
        order.shipment_status = "cancelled"
    elif of_type(ShipmentCreated.type):
        order.shipment_status = "created"
    order.tracking_number = next((data["tracking_number"] for data in of_type(ShipmentCreated.type)), "")
    order.label_url = next((data["label_url"] for data in of_type(ShippingLabelRendered.type)), "")
    order.points_awarded = sum(data["points"] for data in of_type(PointsAwarded.type))
    order.points_reversed = sum(data["points"] for data in of_type(PointsReversed.type))
    turned_fulfilled = False
    if order.status == Order.Status.CONFIRMED and order.shipment_status == "created" and order.points_awarded:
        order.status = Order.Status.FULFILLED
        turned_fulfilled = True
    order.save(update_fields=["shipment_status", "tracking_number", "label_url", "points_awarded", "points_reversed", "status"])
    if turned_fulfilled and order.callback_url:
        _order_fulfilled_notify_send(order_id=order.pk)
    return order


def _order_fulfilled_notify_send(*, order_id: int) -> None:
    # Sent inside the consumer's transaction, not after commit, as shipping sends its label job: a
    # crash between commit and send would lose the notification, while a job sent for a transaction
    # that then rolls back finds the order not yet fulfilled and retries until the redelivered event
    # commits it. At least once: the task is keyed by order and skips an order already delivered.
    from shop.tasks import notify_order_fulfilled

    notify_order_fulfilled.delay(order_id)
