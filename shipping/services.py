"""Every write shipping makes; each records its event in the same transaction."""
import secrets
import time

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from messaging.jobs import job_send
from messaging.sql import insert_unless_present
from messaging.events import PurchaseConfirmed, ShipmentCancelled, ShipmentCreated, ShippingLabelRendered
from messaging.outbox import outbox_event_record
from shipping.labels import label_png
from shipping.models import Shipment

SHIPPING_DATABASE = "shipping"


class ShipmentNotReady(Exception):
    """The label job ran before the shipment it is for was committed."""


def shipment_create(*, purchase: PurchaseConfirmed) -> Shipment | None:
    """Create the order's one shipment; None if it already has one (the unique order id decides)."""
    address = purchase.shipping_address
    shipment = Shipment(
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
    # One statement: the unique order id decides, as the constraint did with a savepoint around it.
    if not insert_unless_present(shipment, using=SHIPPING_DATABASE, conflict_fields=("order_id",)):
        return None
    outbox_event_record(
        ShipmentCreated(shipment_id=shipment.pk, order_id=shipment.order_id, tracking_number=shipment.tracking_number,
                        country=shipment.country),
        using=SHIPPING_DATABASE,
    )
    _label_job_send(order_id=shipment.order_id)
    return shipment


def _label_job_send(*, order_id: int) -> None:
    # Sent inside the transaction, not after commit: a crash between commit and send would lose the
    # job, while a job sent for a transaction that then rolls back finds no shipment and gives up
    # (the redelivered event sends another). The task is keyed by order, and rendering is idempotent.
    # In a consumer's batch the jobs go out together just before its commit (messaging/jobs.py).
    from shipping.tasks import render_shipping_label

    job_send(render_shipping_label, order_id)


def shipment_label_render(*, order_id: int, worker: str) -> Shipment | None:
    """Render and store the order's label once; None if the shipment was cancelled meanwhile."""
    shipment = Shipment.objects.filter(order_id=order_id).first()
    if shipment is None:
        raise ShipmentNotReady(order_id)
    if shipment.status != Shipment.Status.AWAITING_LABEL:
        return shipment if shipment.status == Shipment.Status.LABEL_READY else None
    # Rendered outside the transaction: the slow part must not hold a database lock.
    png = label_png(
        tracking_number=shipment.tracking_number,
        order_number=shipment.order_number,
        recipient=[shipment.recipient_name, shipment.line1, f"{shipment.postal_code} {shipment.city}"],
        country=shipment.country,
    )
    time.sleep(settings.SHIPPING_LABEL_EXTRA_SECONDS)
    with transaction.atomic(using=SHIPPING_DATABASE):
        shipment = Shipment.objects.select_for_update().get(pk=shipment.pk)
        if shipment.status != Shipment.Status.AWAITING_LABEL:
            return shipment if shipment.status == Shipment.Status.LABEL_READY else None
        shipment.label.save(f"{shipment.tracking_number}.png", ContentFile(png), save=False)
        shipment.status = Shipment.Status.LABEL_READY
        shipment.label_rendered_by = worker
        shipment.save(update_fields=["label", "status", "label_rendered_by"])
        outbox_event_record(
            ShippingLabelRendered(shipment_id=shipment.pk, order_id=order_id, label_url=shipment.label.url),
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
