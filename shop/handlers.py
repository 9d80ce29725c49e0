"""Docs: docs/architecture.md#the-shop-listens. What the shop does with events from shipping and loyalty."""
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
    order_journey_record(
        envelope=envelope,
        summary=f"Shipment created, tracking {event.tracking_number}",
        shipment_status="created",
        tracking_number=event.tracking_number,
    )


def order_note_shipment_cancelled(envelope: Envelope) -> None:
    order_journey_record(envelope=envelope, summary="Shipment cancelled", shipment_status="cancelled")


def order_note_label_rendered(envelope: Envelope) -> None:
    event: ShippingLabelRendered = envelope.event
    order_journey_record(envelope=envelope, summary="Shipping label printed", label_url=event.label_url)


def order_note_points_awarded(envelope: Envelope) -> None:
    event: PointsAwarded = envelope.event
    order_journey_record(envelope=envelope, summary=f"{event.points} loyalty points credited", points_awarded=event.points)


def order_note_points_reversed(envelope: Envelope) -> None:
    event: PointsReversed = envelope.event
    order_journey_record(envelope=envelope, summary=f"{event.points} loyalty points reversed", points_reversed=event.points)


HANDLERS = {
    ShipmentCreated.type: order_note_shipment_created,
    ShipmentCancelled.type: order_note_shipment_cancelled,
    ShippingLabelRendered.type: order_note_label_rendered,
    PointsAwarded.type: order_note_points_awarded,
    PointsReversed.type: order_note_points_reversed,
}
