"""Every write shipping makes; each records its event in the same transaction."""
import secrets

from django.db import IntegrityError, transaction
from django.utils import timezone

from messaging.events import PurchaseConfirmed, ShipmentCancelled, ShipmentCreated
from messaging.outbox import outbox_event_record
from shipping.models import Shipment

SHIPPING_DATABASE = "shipping"


def shipment_create(*, purchase: PurchaseConfirmed) -> Shipment | None:
    """Create the order's one shipment; None if it already has one (the unique order id decides)."""
    address = purchase.shipping_address
    try:
        with transaction.atomic(using=SHIPPING_DATABASE):
            shipment = Shipment.objects.create(
                order_id=purchase.order_id,
                order_number=purchase.order_number,
                customer_id=purchase.customer_id,
                recipient_name=address.name,
                line1=address.line1,
                city=address.city,
                postal_code=address.postal_code,
                country=address.country,
                item_count=sum(line.quantity for line in purchase.lines),
                tracking_number=_tracking_number(),
            )
    except IntegrityError:
        return None
    outbox_event_record(
        ShipmentCreated(shipment_id=shipment.pk, order_id=shipment.order_id, tracking_number=shipment.tracking_number,
                        country=shipment.country),
        using=SHIPPING_DATABASE,
    )
    return shipment


def shipment_cancel(*, order_id: int) -> Shipment:
    """Cancel the order's shipment. If the purchase has not arrived yet, leave a cancelled shipment
    in its place, so the purchase, when it comes, finds the order already cancelled."""
    shipment = Shipment.objects.select_for_update().filter(order_id=order_id).first()
    if shipment is None:
        return Shipment.objects.create(
            order_id=order_id,
            tracking_number=_tracking_number(),
            status=Shipment.Status.CANCELLED,
            cancelled_at=timezone.now(),
            cancelled_before_purchase=True,
        )
    if shipment.status != Shipment.Status.CANCELLED:
        shipment.status = Shipment.Status.CANCELLED
        shipment.cancelled_at = timezone.now()
        shipment.save(update_fields=["status", "cancelled_at"])
        outbox_event_record(ShipmentCancelled(shipment_id=shipment.pk, order_id=order_id), using=SHIPPING_DATABASE)
    return shipment


def _tracking_number() -> str:
    return f"TRK{secrets.token_hex(6).upper()}"
