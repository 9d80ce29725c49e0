"""Checkout in one of two modes, switched at run time, to compare what each costs the customer.

async (the default): the order commits with its event in the outbox and the request answers;
shipping and loyalty act later, from the broker.

sync: after the order commits, the shop calls shipping and then loyalty over HTTP inside the request
and waits for both, so their delays add up in the checkout's latency, and when either is down the
checkout fails although the order stands. Each call delivers the very same CloudEvent (the outbox
row's body, same event id), which the service applies through the same consumer runtime and inbox
(messaging/internal_apis.py); the broker's copy arriving later is then a duplicate and changes
nothing. The outbox is written in both modes, so no event is ever lost: sync mode only adds the
blocking calls, and with them the coupling of every checkout to every service's speed and health.

Every checkout, whatever its outcome, records a `CheckoutTiming` for the operations view.
"""
from __future__ import annotations

import logging
import time

import requests
from django.conf import settings
from django.db import DatabaseError, connections, transaction

from messaging.events import CONTENT_TYPE, PurchaseConfirmed
from messaging.internal_apis import INTERNAL_TOKEN_HEADER, ROUTING_KEY_HEADER
from messaging.models import OutboxMessage
from messaging.runtime_settings import CHECKOUT_MODE, runtime_setting_get, runtime_setting_set
from shop.models import CheckoutTiming, Order
from shop.services import SHOP_DATABASE, OrderItem, PlacedOrder, ShippingAddress, order_place

logger = logging.getLogger(__name__)

# Called in this order in sync mode; loyalty-bonus is not part of checkout (it stays asynchronous).
SYNC_SERVICES = ("shipping", "loyalty")


class DownstreamUnavailable(Exception):
    """A service called during a sync checkout failed or did not answer. The order stays placed."""

    def __init__(self, service: str, reason: str, *, order: Order | None = None):
        self.service = service
        self.reason = reason
        self.order = order
        placed = f"Order {order.number} is placed" if order else "The order is placed"
        super().__init__(
            f"{service} is unavailable ({reason}). {placed} and its event is recorded: "
            f"{service} will complete it asynchronously once it is back."
        )


def checkout_mode_get() -> str:
    mode = runtime_setting_get(key=CHECKOUT_MODE, default={"mode": CheckoutTiming.Mode.ASYNC}).get("mode")
    return mode if mode in CheckoutTiming.Mode.values else CheckoutTiming.Mode.ASYNC


def checkout_mode_set(*, mode: str) -> None:
    if mode not in CheckoutTiming.Mode.values:
        raise ValueError(f"unknown checkout mode {mode!r}: choose one of {', '.join(CheckoutTiming.Mode.values)}")
    runtime_setting_set(key=CHECKOUT_MODE, value={"mode": mode})


def checkout_place_order(
    *,
    customer,
    items: list[OrderItem],
    shipping_address: ShippingAddress,
    idempotency_key: str | None = None,
    callback_url: str = "",
) -> PlacedOrder:
    """Place the order (`order_place`) and, in sync mode, deliver its event to shipping and loyalty.

    Raises what `order_place` raises, and `DownstreamUnavailable` when a sync call fails (after the
    order committed). A replayed request (same Idempotency-Key) delivers again in sync mode: the
    services answer "duplicate" if they already have it, so a retry after a failure completes it.
    """
    started = time.perf_counter()
    mode = checkout_mode_get()
    succeeded, detail = False, ""
    try:
        placed = order_place(
            customer=customer,
            items=items,
            shipping_address=shipping_address,
            idempotency_key=idempotency_key,
            callback_url=callback_url,
        )
        if mode == CheckoutTiming.Mode.SYNC:
            _services_deliver(placed.order)
        succeeded = True
        return placed
    except DownstreamUnavailable as error:
        detail = f"{error.service}: {error.reason}"
        raise
    except Exception as error:
        detail = f"{type(error).__name__}: {error}"
        raise
    finally:
        _timing_record(mode=mode, duration_ms=(time.perf_counter() - started) * 1000, succeeded=succeeded, detail=detail)


def _services_deliver(order: Order) -> None:
    if connections[SHOP_DATABASE].in_atomic_block:
        # The services would apply an order that may still roll back.
        raise RuntimeError("a sync checkout must run outside any transaction, once the order is committed")
    message = OutboxMessage.objects.using(SHOP_DATABASE).get(
        source=PurchaseConfirmed.source, subject=str(order.pk), event_type=PurchaseConfirmed.type
    )
    for service in SYNC_SERVICES:
        _service_deliver(service, message, order)


def _service_deliver(service: str, message: OutboxMessage, order: Order) -> None:
    base_url = getattr(settings, "SERVICE_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
    timeout = getattr(settings, "CHECKOUT_SYNC_TIMEOUT_SECONDS", 5.0)
    headers = {
        "Content-Type": CONTENT_TYPE,
        INTERNAL_TOKEN_HEADER: settings.INTERNAL_API_TOKEN,
        ROUTING_KEY_HEADER: message.routing_key,
    }
    try:
        response = requests.post(f"{base_url}/internal/events/{service}/", data=message.body.encode(),
                                 headers=headers, timeout=timeout)
    except requests.Timeout:
        raise DownstreamUnavailable(service, f"no answer within {timeout:g} s", order=order) from None
    except requests.RequestException as error:
        raise DownstreamUnavailable(service, f"unreachable: {type(error).__name__}", order=order) from None
    if response.status_code != 200:
        raise DownstreamUnavailable(service, f"answered {response.status_code}: {_answer_detail(response)}", order=order)


def _answer_detail(response: requests.Response) -> str:
    try:
        return str(response.json().get("detail", ""))[:120]
    except (ValueError, AttributeError):
        return response.text[:120]


def _timing_record(*, mode: str, duration_ms: float, succeeded: bool, detail: str) -> None:
    max_length = CheckoutTiming._meta.get_field("detail").max_length
    try:
        with transaction.atomic(using=SHOP_DATABASE):  # a savepoint when the caller holds a transaction
            CheckoutTiming.objects.using(SHOP_DATABASE).create(
                mode=mode, duration_ms=duration_ms, succeeded=succeeded, detail=detail[:max_length]
            )
    except DatabaseError as error:
        # A lost measurement must not turn a placed order into an error for the customer.
        logger.warning("could not record a checkout timing: %s", error)
