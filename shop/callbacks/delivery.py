"""The delivery: one attempt to notify an order's callback URL, recorded (called by the task in shop/tasks.py)."""
from __future__ import annotations

import time

import requests
from django.conf import settings

from shop.callbacks.signing import callback_body, callback_headers, callback_payload
from shop.callbacks.validation import CallbackHostUnresolved, CallbackUrlRefused, callback_url_validate
from shop.models import CallbackDelivery, Order

CALLBACK_TIMEOUT_SECONDS = 5


class CallbackFailed(Exception):
    """The receiver answered something other than 2xx: worth another attempt later."""


class OrderNotFulfilledYet(Exception):
    """The notification ran before the transaction that fulfilled the order was committed."""


def order_fulfilled_notify(*, order_id: int, attempt: int) -> CallbackDelivery | None:
    """Make one attempt to notify the order's callback URL, recorded as one CallbackDelivery row.

    Returns None when there is nothing to do. Raises `CallbackFailed`, `requests.RequestException`
    or `OrderNotFulfilledYet` when a later attempt may succeed (the task retries those).
    """
    order = Order.objects.filter(pk=order_id).first()
    if order is None or not order.callback_url:
        return None
    # Makes our own retries and redelivered jobs stop once one attempt got through. Two jobs racing
    # can still both POST (and a worker may die between POST and record): receivers dedupe on the
    # Idempotency-Key, which is the only guarantee an HTTP callback can give.
    if order.callback_deliveries.filter(delivered=True).exists():
        return None
    if order.status == Order.Status.CONFIRMED:
        raise OrderNotFulfilledYet(order_id)
    if order.status != Order.Status.FULFILLED:
        return None  # cancelled since: nothing fulfilled to report
    url = order.callback_url
    try:
        # Again at send time: DNS may now answer differently than when the order was placed.
        callback_url_validate(url)
    except CallbackHostUnresolved as exc:
        _attempt_record(order, url, attempt, error=f"refused: {exc.reason}")
        raise CallbackFailed(exc.reason) from exc
    except CallbackUrlRefused as exc:
        return _attempt_record(order, url, attempt, error=f"refused: {exc.reason}")  # give up: it stays refused

    body = callback_body(callback_payload(order))
    secret = settings.CALLBACK_SIGNING_SECRET
    headers = callback_headers(order, body, secret=secret, timestamp=int(time.time()))
    try:
        # No redirects: a redirect could lead to an internal address that validation never saw.
        response = requests.post(url, data=body, headers=headers, timeout=CALLBACK_TIMEOUT_SECONDS,
                                 allow_redirects=False)
    except requests.RequestException as exc:
        _attempt_record(order, url, attempt, error=f"{type(exc).__name__}: {exc}")
        raise
    delivered = 200 <= response.status_code < 300
    record = _attempt_record(order, url, attempt, status_code=response.status_code, delivered=delivered)
    if not delivered:
        raise CallbackFailed(f"{url} answered {response.status_code}")
    return record


def _attempt_record(order: Order, url: str, attempt: int, *, status_code: int | None = None, error: str = "",
                    delivered: bool = False) -> CallbackDelivery:
    return CallbackDelivery.objects.create(order=order, url=url, attempt=attempt, status_code=status_code,
                                           error=error[:1000], delivered=delivered)
