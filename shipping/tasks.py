"""Docs: docs/routing.md#work-queue. Celery tasks: fetch by id, call a service, nothing else."""
import socket

from celery import shared_task

from shipping.services import ShipmentNotReady, shipment_label_render


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    # The shipment may not be committed yet (the task is sent inside the consumer's transaction),
    # or the database may be briefly away: both pass, so retry with backoff.
    autoretry_for=(ShipmentNotReady, ConnectionError),
    retry_backoff=1,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=8,
)
def render_shipping_label(self, order_id: int) -> str:
    shipment = shipment_label_render(order_id=order_id, worker=self.request.hostname or socket.gethostname())
    return shipment.tracking_number if shipment else ""
