"""What a callback sends (payload, body, headers) and how it is signed; `callback_signature_verify` for receivers."""
from __future__ import annotations

import hashlib
import hmac
import json
import time

from messaging.events import PointsAwarded, ShipmentCreated
from shop.models import Order

ORDER_FULFILLED_EVENT = "order.fulfilled"
SIGNATURE_HEADER = "X-Eventshop-Signature"
EVENT_HEADER = "X-Eventshop-Event"
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
SIGNATURE_TOLERANCE_SECONDS = 300


def callback_payload(order: Order) -> dict:
    return {
        "event": ORDER_FULFILLED_EVENT,
        "order_id": order.pk,
        "order_number": order.number,
        "status": order.status,
        "total": str(order.total),
        "currency": order.currency,
        "tracking_number": order.tracking_number,
        "points_awarded": order.points_awarded,
        "fulfilled_at": _fulfilled_at(order),
    }


def _fulfilled_at(order: Order) -> str | None:
    # Fulfilled when the shop had heard both that the shipment exists and that points were credited.
    heard = {}
    for step in order.journey_steps.filter(event_type__in=[ShipmentCreated.type, PointsAwarded.type]):
        heard.setdefault(step.event_type, step.received_at)
    if len(heard) < 2:
        return None
    return max(heard.values()).isoformat().replace("+00:00", "Z")


def callback_body(payload: dict) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def callback_signature(body: bytes, secret: str, timestamp: int) -> str:
    """Hex HMAC-SHA256 of `"<timestamp>." + body`: the timestamp is signed too, so an old request
    replayed later fails the receiver's freshness check instead of passing as new."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def callback_signature_verify(body: bytes, header_value: str, secret: str,
                              tolerance_seconds: int = SIGNATURE_TOLERANCE_SECONDS,
                              now: float | None = None) -> bool:
    """What a receiver runs on the raw request body and the X-Eventshop-Signature header.

    True only if some `v1` value matches (several are allowed, for secret rotation) and `t` is within
    `tolerance_seconds` of now. Compare in constant time; never parse and re-serialise the body first.
    """
    try:
        fields = [item.split("=", 1) for item in header_value.split(",")]
        timestamp = int(next(value for key, value in fields if key.strip() == "t"))
        signatures = [value.strip() for key, value in fields if key.strip() == "v1"]
    except (ValueError, StopIteration):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_seconds:
        return False
    expected = callback_signature(body, secret, timestamp)
    return any(hmac.compare_digest(expected, signature) for signature in signatures)


def callback_headers(order: Order, body: bytes, *, secret: str, timestamp: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        EVENT_HEADER: ORDER_FULFILLED_EVENT,
        SIGNATURE_HEADER: f"t={timestamp},v1={callback_signature(body, secret, timestamp)}",
        IDEMPOTENCY_KEY_HEADER: f"order-{order.pk}-fulfilled",
    }
