"""Every read the shop makes beyond a plain get."""
from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet

from messaging.models import OutboxMessage
from shop.models import Order, Product


def product_list(*, in_stock_only: bool = False) -> QuerySet[Product]:
    products = Product.objects.all()
    return products.filter(stock__gt=0) if in_stock_only else products


def order_list_for_customer(*, customer) -> QuerySet[Order]:
    return Order.objects.filter(customer=customer).prefetch_related("lines")


def order_list_visible_to(*, user) -> QuerySet[Order]:
    """The user's own orders; staff see everyone's."""
    return Order.objects.prefetch_related("lines") if user.is_staff else order_list_for_customer(customer=user)


def order_for_idempotency_key(*, customer, idempotency_key: str) -> Order | None:
    return Order.objects.filter(customer=customer, idempotency_key=idempotency_key).first() if idempotency_key else None


def order_visible_to(*, user, order_id: int) -> Order | None:
    """The order if `user` owns it or is staff; None otherwise (callers answer 404, not 403)."""
    orders = Order.objects.prefetch_related("lines")
    if not user.is_staff:
        orders = orders.filter(customer=user)
    return orders.filter(pk=order_id).first()


@dataclass(frozen=True)
class JourneyEntry:
    at: datetime
    source: str
    event_type: str
    summary: str
    published: bool = True


def order_journey(*, order: Order) -> list[JourneyEntry]:
    """What the shop published about the order and what it heard back, in time order."""
    published = [
        JourneyEntry(
            at=message.created_at,
            source=message.source,
            event_type=message.event_type,
            summary=f"{message.event_type} recorded" + ("" if message.published_at else " (not yet published)"),
            published=message.published_at is not None,
        )
        for message in OutboxMessage.objects.using("default").filter(source="/shop", subject=str(order.pk))
    ]
    heard = [
        JourneyEntry(at=step.occurred_at, source=step.source, event_type=step.event_type, summary=step.summary)
        for step in order.journey_steps.all()
    ]
    return sorted(published + heard, key=lambda entry: entry.at)
