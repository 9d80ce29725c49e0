"""Docs: docs/architecture.md#the-shop-listens. What the shop does with events from shipping and loyalty.

Every handler adds a step to the order's journey; the order's fulfilment fields are derived from all
its steps, so this subscription is unordered (messaging/topology.py).
"""
from messaging.events import (
    Envelope,
    PointsAwarded,
    PointsReversed,
    ShipmentCancelled,
    ShipmentCreated,
    ShippingLabelRendered,
)
from shop.services import order_journey_record


def order_note_shipment_created(envelope: Envelope) -> None:
    event: ShipmentCreated = envelope.event
    order_journey_record(envelope=envelope, summary=f"Shipment created, tracking {event.tracking_number}")


def order_note_shipment_cancelled(envelope: Envelope) -> None:
    order_journey_record(envelope=envelope, summary="Shipment cancelled")


def order_note_label_rendered(envelope: Envelope) -> None:
    order_journey_record(envelope=envelope, summary="Shipping label printed")


def order_note_points_awarded(envelope: Envelope) -> None:
    event: PointsAwarded = envelope.event
    what = "large-order bonus points" if event.reason == "large_order_bonus" else "loyalty points"
    order_journey_record(envelope=envelope, summary=f"{event.points} {what} credited")


def order_note_points_reversed(envelope: Envelope) -> None:
    event: PointsReversed = envelope.event
    order_journey_record(envelope=envelope, summary=f"{event.points} loyalty points reversed")


HANDLERS = {
    ShipmentCreated.type: order_note_shipment_created,
    ShipmentCancelled.type: order_note_shipment_cancelled,
    ShippingLabelRendered.type: order_note_label_rendered,
    PointsAwarded.type: order_note_points_awarded,
    PointsReversed.type: order_note_points_reversed,
}
