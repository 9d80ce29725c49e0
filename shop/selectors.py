"""Every read the shop makes beyond a plain get."""
import dataclasses
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from messaging.models import OutboxMessage
from shop.models import CheckoutTiming, Order, Product


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
    # Milliseconds since the order was placed: the asynchronous gap a customer waits, made visible.
    since_order_ms: int = 0


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
    return [dataclasses.replace(entry, since_order_ms=round((entry.at - order.created_at).total_seconds() * 1000))
            for entry in sorted(published + heard, key=lambda entry: entry.at)]


CHECKOUT_PERCENTILES = (50, 95, 99)


def checkout_latency_summary(*, minutes: int = 15) -> dict:
    """Per mode, over the last `minutes`: {"p50", "p95", "p99" (ms, None without data), "count", "failures"}.

    Failed checkouts count too: the customer waited for them as well (a timeout is the slowest of all).
    Percentiles are nearest-rank, so each is a duration that was actually measured.
    """
    since = timezone.now() - timedelta(minutes=minutes)
    durations: dict[str, list[float]] = {mode: [] for mode in CheckoutTiming.Mode.values}
    failures = dict.fromkeys(CheckoutTiming.Mode.values, 0)
    rows = CheckoutTiming.objects.filter(created_at__gte=since, mode__in=CheckoutTiming.Mode.values)
    for mode, duration_ms, succeeded in rows.values_list("mode", "duration_ms", "succeeded"):
        durations[mode].append(duration_ms)
        failures[mode] += not succeeded
    return {
        mode: {
            **{f"p{p}": _nearest_rank(sorted(values), p) for p in CHECKOUT_PERCENTILES},
            "count": len(values),
            "failures": failures[mode],
        }
        for mode, values in durations.items()
    }


def checkout_latency_context(*, minutes: int = 15, failures_shown: int = 5) -> dict:
    """What shop/ops/_checkout_latency.html renders: the mode, the summary and the latest failures."""
    from shop.checkout import checkout_mode_get  # shop.checkout imports shop.services, which imports this module

    return {
        "checkout_mode": checkout_mode_get(),
        "checkout_latency_summary": checkout_latency_summary(minutes=minutes),
        "checkout_latency_minutes": minutes,
        "checkout_failures": list(CheckoutTiming.objects.filter(succeeded=False).order_by("-created_at", "-id")[:failures_shown]),
    }


def _nearest_rank(ordered: list[float], percentile: int) -> float | None:
    if not ordered:
        return None
    return ordered[max(math.ceil(percentile / 100 * len(ordered)), 1) - 1]
