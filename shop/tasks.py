"""Docs: shop/callbacks/__init__.py (module docstring). Celery tasks: fetch by id, call a service, nothing else."""
import requests
from celery import shared_task

from shop.callbacks import CallbackFailed, OrderNotFulfilledYet, order_fulfilled_notify


@shared_task(
    bind=True,
    # Acked after it ran, and put back if the worker dies mid-POST: the receiver may then hear twice,
    # which the Idempotency-Key lets it ignore; losing the notification would be worse.
    acks_late=True,
    reject_on_worker_lost=True,
    # Named transient failures only: the receiver is down or answered non-2xx, or the job ran before
    # the consumer's transaction that fulfilled the order committed (it is sent inside it).
    autoretry_for=(requests.RequestException, CallbackFailed, OrderNotFulfilledYet),
    retry_backoff=2,  # 2, 4, 8, ... seconds, capped below; jitter spreads a receiver's backlog
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=8,
)
def notify_order_fulfilled(self, order_id: int) -> bool:
    delivery = order_fulfilled_notify(order_id=order_id, attempt=self.request.retries + 1)
    return bool(delivery and delivery.delivered)
