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
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
import time
from urllib.parse import urlsplit

import requests
from django.conf import settings

from messaging.events import PointsAwarded, ShipmentCreated
from shop.models import CallbackDelivery, Order

CALLBACK_URL_MAX_LENGTH = 500
CALLBACK_TIMEOUT_SECONDS = 5
ORDER_FULFILLED_EVENT = "order.fulfilled"
SIGNATURE_HEADER = "X-Eventshop-Signature"
EVENT_HEADER = "X-Eventshop-Event"
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
SIGNATURE_TOLERANCE_SECONDS = 300


class CallbackUrlRefused(ValueError):
    """The shop will not call this URL; `reason` says why, in words fit for an API client."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class CallbackHostUnresolved(CallbackUrlRefused):
    """The host did not resolve: maybe a typo, maybe a passing DNS failure (the task retries it)."""


class CallbackFailed(Exception):
    """The receiver answered something other than 2xx: worth another attempt later."""


class OrderNotFulfilledYet(Exception):
    """The notification ran before the transaction that fulfilled the order was committed."""


# --- which URLs ------------------------------------------------------------------------------------


def callback_url_validate(url: str) -> str:
    """Return `url` if the shop may POST to it, else raise `CallbackUrlRefused`.

    The shop's workers sit inside the network, so a URL a client chooses must not reach what only
    they can reach (SSRF): every address the host resolves to must be public, not just the first.
    `CALLBACK_ALLOW_PRIVATE_URLS` lifts that for the demo and the tests, never in production.
    """
    if len(url) > CALLBACK_URL_MAX_LENGTH:
        raise CallbackUrlRefused(f"must be at most {CALLBACK_URL_MAX_LENGTH} characters")
    parts = urlsplit(url)
    if parts.scheme.lower() not in {"http", "https"}:
        raise CallbackUrlRefused("must be an http or https URL")
    if "@" in parts.netloc:
        raise CallbackUrlRefused("must not contain credentials; the shop signs its requests instead")
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:  # a port that is not a number, or out of range
        raise CallbackUrlRefused("has an invalid port") from exc
    if not host:
        raise CallbackUrlRefused("must name a host")
    if getattr(settings, "CALLBACK_ALLOW_PRIVATE_URLS", False):
        return url
    for address in _addresses_of(host, port or (443 if parts.scheme.lower() == "https" else 80)):
        if _is_internal(address):
            raise CallbackUrlRefused(f"must resolve to public addresses only, not {address}")
    return url


def _addresses_of(host: str, port: int) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise CallbackHostUnresolved(f"host {host!r} does not resolve") from exc
    # An IPv6 link-local answer may carry a scope ("fe80::1%eth0"): the scope is no part of the address.
    return {ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos}


def _is_internal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return (
        address.is_private or address.is_loopback or address.is_link_local or address.is_multicast
        or address.is_reserved or address.is_unspecified
        # Also what is neither private nor global, such as carrier-grade NAT (100.64.0.0/10).
        or not address.is_global
    )


# --- what is sent, and how it is signed ------------------------------------------------------------


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


# --- the delivery (called by the task in shop/tasks.py) ---------------------------------------------


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
    secret = getattr(settings, "CALLBACK_SIGNING_SECRET", settings.SECRET_KEY)
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
