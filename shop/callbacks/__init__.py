"""Order callbacks: which URLs the shop will call, what it sends there, how it signs it, and the delivery.

A client gives a `callback_url` when it places an order; once the order is fulfilled a Celery task
(shop/tasks.py) POSTs a signed JSON body there, retrying with backoff until the receiver answers 2xx.

What a receiver gets, on every attempt of one notification:

    POST <callback_url>
    Content-Type: application/json
    X-Eventshop-Event: order.fulfilled
    X-Eventshop-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body, keyed with the shared secret>
    Idempotency-Key: order-<id>-fulfilled

Delivery is at least once: a retry, or a worker that dies after the POST but before recording it,
sends the same notification again with the same Idempotency-Key, so receivers dedupe on that key.
Receivers verify the signature over the raw body bytes, as `callback_signature_verify` does (it uses
the standard library only: copy it).

The parts: `validation` (which URLs the shop will call), `signing` (what it sends and how it signs
it), `delivery` (one attempt, recorded). Import from here.
"""
from shop.callbacks.delivery import (
    CALLBACK_TIMEOUT_SECONDS,
    CallbackFailed,
    OrderNotFulfilledYet,
    order_fulfilled_notify,
)
from shop.callbacks.signing import (
    EVENT_HEADER,
    IDEMPOTENCY_KEY_HEADER,
    ORDER_FULFILLED_EVENT,
    SIGNATURE_HEADER,
    SIGNATURE_TOLERANCE_SECONDS,
    callback_body,
    callback_headers,
    callback_payload,
    callback_signature,
    callback_signature_verify,
)
from shop.callbacks.validation import (
    CALLBACK_URL_MAX_LENGTH,
    CallbackHostUnresolved,
    CallbackUrlRefused,
    callback_url_validate,
)

__all__ = [
    "CALLBACK_TIMEOUT_SECONDS",
    "CALLBACK_URL_MAX_LENGTH",
    "EVENT_HEADER",
    "IDEMPOTENCY_KEY_HEADER",
    "ORDER_FULFILLED_EVENT",
    "SIGNATURE_HEADER",
    "SIGNATURE_TOLERANCE_SECONDS",
    "CallbackFailed",
    "CallbackHostUnresolved",
    "CallbackUrlRefused",
    "OrderNotFulfilledYet",
    "callback_body",
    "callback_headers",
    "callback_payload",
    "callback_signature",
    "callback_signature_verify",
    "callback_url_validate",
    "order_fulfilled_notify",
]
