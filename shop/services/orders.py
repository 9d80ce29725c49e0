"""Placing and cancelling orders: each records its event in the outbox in the same transaction as the change."""
from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from messaging.correlation import current_correlation_id
from messaging.events import Address, OrderCancelled, PurchaseConfirmed, PurchaseLine
from messaging.outbox import outbox_event_record
from shop.models import Order, OrderLine, Product
from shop.selectors import order_for_idempotency_key

SHOP_DATABASE = "default"
MAX_LINES_PER_ORDER = 50
MAX_QUANTITY_PER_LINE = 100


class OrderRejected(Exception):
    """The order cannot be placed as asked. `errors` maps a field path to its reasons."""

    status_code = 400

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__(json.dumps(errors))
        self.errors = errors


class OutOfStock(OrderRejected):
    status_code = 409


class IdempotencyKeyReused(Exception):
    """The same Idempotency-Key came with a different request body."""


@dataclass(frozen=True)
class OrderItem:
    sku: str
    quantity: int


@dataclass(frozen=True)
class ShippingAddress:
    name: str
    line1: str
    city: str
    postal_code: str
    country: str


@dataclass
class PlacedOrder:
    order: Order
    created: bool = field(default=True)


def order_place(
    *,
    customer: AbstractBaseUser,
    items: list[OrderItem],
    shipping_address: ShippingAddress,
    idempotency_key: str | None = None,
    callback_url: str = "",
) -> PlacedOrder:
    """Price the order on the server, take the stock, and record the order with its event.

    With an `idempotency_key`, the same request placed again returns the first order and places
    nothing; the same key with a different request raises `IdempotencyKeyReused`. A `callback_url`
    (validated by the caller: shop.callbacks.callback_url_validate) is notified once it is fulfilled.
    """
    # Not callback_url: it is where to report, not what is bought, and the same formula keeps older keys replayable.
    fingerprint = _request_fingerprint(items, shipping_address)
    if idempotency_key:
        existing = _order_for_idempotency_key(customer, idempotency_key, fingerprint)
        if existing:
            return PlacedOrder(order=existing, created=False)
    try:
        order = _order_create(
            customer=customer,
            items=items,
            shipping_address=shipping_address,
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
            callback_url=callback_url,
        )
    except IntegrityError:
        # A concurrent request with the same key won the race; its order is the answer.
        existing = idempotency_key and _order_for_idempotency_key(customer, idempotency_key, fingerprint)
        if not existing:
            raise
        return PlacedOrder(order=existing, created=False)
    return PlacedOrder(order=order, created=True)


@transaction.atomic(using=SHOP_DATABASE)
def _order_create(*, customer, items, shipping_address, idempotency_key, fingerprint, callback_url="") -> Order:
    quantities = _merge_quantities(items)
    # Lock the products in a fixed order so concurrent orders cannot deadlock each other.
    products = {p.sku: p for p in Product.objects.select_for_update().filter(sku__in=quantities).order_by("pk")}
    unknown = sorted(set(quantities) - set(products))
    if unknown:
        raise OrderRejected({"items": [f"unknown sku: {sku}" for sku in unknown]})

    short = {}
    for sku, quantity in quantities.items():
        # A conditional update: the database refuses to go below zero even without the row lock.
        taken = Product.objects.filter(pk=products[sku].pk, stock__gte=quantity).update(stock=F("stock") - quantity)
        if not taken:
            short[sku] = products[sku].stock
    if short:
        raise OutOfStock({"items": [f"not enough stock for {sku}: {left} left" for sku, left in short.items()]})

    total = sum((products[sku].price * quantity for sku, quantity in quantities.items()), Decimal("0.00"))
    order = Order.objects.create(
        number=_order_number(),
        customer=customer,
        total=total,
        ship_to_name=shipping_address.name,
        ship_to_line1=shipping_address.line1,
        ship_to_city=shipping_address.city,
        ship_to_postal_code=shipping_address.postal_code,
        ship_to_country=shipping_address.country,
        idempotency_key=idempotency_key or None,
        request_fingerprint=fingerprint,
        callback_url=callback_url,
        correlation_id=current_correlation_id.get(),
    )
    lines = OrderLine.objects.bulk_create(
        OrderLine(order=order, product=products[sku], sku=sku, name=products[sku].name, quantity=quantity,
                  unit_price=products[sku].price)
        for sku, quantity in quantities.items()
    )
    outbox_event_record(_purchase_confirmed(order, lines), using=SHOP_DATABASE)
    return order


@transaction.atomic(using=SHOP_DATABASE)
def order_cancel(*, order: Order, reason: str = "cancelled by customer") -> Order:
    """Cancel an order, put its stock back and record the cancellation event. Cancelling twice is a no-op."""
    order = Order.objects.select_for_update().get(pk=order.pk)
    if order.status == Order.Status.CANCELLED:
        return order
    for line in order.lines.all():
        Product.objects.filter(pk=line.product_id).update(stock=F("stock") + line.quantity)
    order.status = Order.Status.CANCELLED
    order.cancelled_at = timezone.now()
    order.save(update_fields=["status", "cancelled_at"])
    outbox_event_record(
        OrderCancelled(
            order_id=order.pk,
            order_number=order.number,
            customer_id=order.customer_id,
            reason=reason,
            total=order.total,
            currency=order.currency,
        ),
        using=SHOP_DATABASE,
    )
    return order


def _merge_quantities(items: list[OrderItem]) -> dict[str, int]:
    if not items:
        raise OrderRejected({"items": ["an order needs at least one item"]})
    if len(items) > MAX_LINES_PER_ORDER:
        raise OrderRejected({"items": [f"at most {MAX_LINES_PER_ORDER} lines per order"]})
    quantities: dict[str, int] = {}
    for item in items:
        if item.quantity < 1:
            raise OrderRejected({"items": [f"quantity for {item.sku} must be at least 1"]})
        quantities[item.sku] = quantities.get(item.sku, 0) + item.quantity
        if quantities[item.sku] > MAX_QUANTITY_PER_LINE:
            raise OrderRejected({"items": [f"at most {MAX_QUANTITY_PER_LINE} of {item.sku} per order"]})
    return quantities


def _order_for_idempotency_key(customer, idempotency_key: str, fingerprint: str) -> Order | None:
    order = order_for_idempotency_key(customer=customer, idempotency_key=idempotency_key)
    if order and order.request_fingerprint != fingerprint:
        raise IdempotencyKeyReused(idempotency_key)
    return order


def _request_fingerprint(items: list[OrderItem], address: ShippingAddress) -> str:
    canonical = json.dumps(
        {"items": [[item.sku, item.quantity] for item in items], "address": address.__dict__},
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _order_number() -> str:
    # Random, not sequential: order numbers are shown to customers and must not leak volumes.
    return f"ES-{timezone.now():%y%m%d}-{secrets.token_hex(4).upper()}"


def _purchase_confirmed(order: Order, lines: list[OrderLine]) -> PurchaseConfirmed:
    return PurchaseConfirmed(
        order_id=order.pk,
        order_number=order.number,
        customer_id=order.customer_id,
        customer_email=order.customer.email,
        lines=[PurchaseLine(sku=line.sku, name=line.name, quantity=line.quantity, unit_price=line.unit_price) for line in lines],
        total=order.total,
        currency=order.currency,
        shipping_address=Address(**order.shipping_address),
    )
