"""The operations view's numbers, read fresh: `operations_state`, for the page and for state.json."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.urls import reverse
from django.utils import timezone

from messaging.faults import FaultPlan
from messaging.models import ConsumerState
from messaging.selectors import consumer_stats, metric_series, outbox_backlogs, queue_depths
from messaging.topology import SUBSCRIPTIONS, UNROUTED_QUEUE_NAME
from shop import scenarios
from shop.models import Order

logger = logging.getLogger(__name__)

CHART_SECONDS = 600
RELAY_SILENT_AFTER_SECONDS = 10  # the relay samples every 2 s: no sample for this long, it is not running
RECENT_ORDERS = 6


@dataclass(frozen=True)
class Lane:
    """One row of the diagram: a queue and whoever consumes it."""

    queue: str
    caption: str
    consumer: str | None  # a name in SUBSCRIPTIONS; None for queues no event consumer reads
    consumer_label: str
    consumer_caption: str
    color: str


LANES = [
    Lane("shipping.events", "purchases and cancellations, for shipping", "shipping", "shipping",
         "creates one shipment per order", "#0284c7"),
    Lane("loyalty.events", "purchases and cancellations, for loyalty", "loyalty", "loyalty",
         "credits floor(total) points per order", "#db2777"),
    Lane("loyalty.large-orders", "only purchases of €200 or more (binding shop.purchase.confirmed.*.large)",
         "loyalty-bonus", "loyalty-bonus", "credits 10% bonus points on large orders", "#9333ea"),
    Lane("shop.journey", "what shipping and loyalty report back about each order", "shop", "shop listener",
         "records the reports on the customer's order page", "#0f766e"),
    Lane("work.shipping-labels", "a work queue (Celery), fed by the shipping consumer, not by the exchange", None,
         "Celery worker", "renders labels; competing workers share the jobs (no heartbeat shown here)", "#ca8a04"),
    Lane(UNROUTED_QUEUE_NAME, "events no queue was bound for (kept by the broker's alternate exchange or its equivalent): should stay at 0",
         None, "nobody", "left for an operator to look at", "#64748b"),
]


def operations_state() -> dict:
    """Everything the overview shows, JSON-ready: times are epoch milliseconds, series [[ms, value], ...]."""
    now = timezone.now()
    broker_error = ""
    try:
        depths = {depth.queue: depth for depth in queue_depths()}
    except Exception as error:  # the page must still show what the databases know when the broker is down
        logger.warning("operations view cannot read queue depths: %s", error)
        broker_error, depths = f"{type(error).__name__}: {error}", {}
    backlogs = outbox_backlogs()
    series = _chart_series()
    latest_sample = max((entry["points"][-1][0] for chart in series.values() for entry in chart if entry["points"]),
                        default=None)
    latest_publish_rate = next((entry["points"][-1][1] for entry in series["rates"]
                                if entry["key"] == "rate.published" and entry["points"]), None)
    return {
        "generated_at": _ms(now),
        "broker": {"error": broker_error},
        "shop": {"orders_last_minute": Order.objects.filter(created_at__gte=now - timedelta(minutes=1)).count()},
        "outbox": {
            "unpublished": sum(backlog.unpublished for backlog in backlogs),
            "lag_seconds": round(max((backlog.lag_seconds for backlog in backlogs), default=0.0), 1),
            "databases": [{"database": backlog.database, "unpublished": backlog.unpublished,
                           "lag_seconds": round(backlog.lag_seconds, 1)} for backlog in backlogs],
        },
        "relay": {
            "published_per_second": None if latest_publish_rate is None else round(latest_publish_rate, 1),
            "last_sample_at": latest_sample,
            "sampling": latest_sample is not None and _ms(now) - latest_sample < RELAY_SILENT_AFTER_SECONDS * 1000,
        },
        "queues": {lane.queue: _queue_state(lane.queue, depths) for lane in LANES},
        "consumers": {name: _consumer_state(name, now) for name in SUBSCRIPTIONS},
        "charts": series,
        "scenario": _scenario_state(),
        "recent_orders": [{"id": order.pk, "number": order.number,
                           "journey_url": reverse("ops:order_journey", args=[order.pk])}
                          for order in Order.objects.order_by("-created_at", "-id")[:RECENT_ORDERS]],
    }


def _queue_state(name: str, depths: dict) -> dict:
    depth = depths.get(name)
    dead = depths.get(f"{name}.dead")
    return {"name": name, "ready": depth.ready if depth else None, "consumers": depth.consumers if depth else None,
            "dead": dead.ready if dead else None}


def _consumer_state(name: str, now: datetime) -> dict:
    stats = consumer_stats(consumer=name, minutes=1, recent=0)
    state = ConsumerState.objects.using(SUBSCRIPTIONS[name].database).filter(consumer=name).first()
    paused_until = state.resumes_at if state else None
    paused = bool(state and state.is_paused)
    age = stats.heartbeat_age_seconds
    if paused_until is not None:
        status, status_text = "paused", f"paused, resumes in {(paused_until - now).total_seconds():.0f} s"
    elif paused:
        status, status_text = "paused", "paused by an operator"
    elif age is None:
        status, status_text = "unknown", "never seen: not started?"
    elif stats.is_alive:
        status, status_text = "alive", "alive"
    else:
        status, status_text = "down", "down: no heartbeat"
    plan = FaultPlan.from_dict(stats.faults)
    handled = sum(stats.last_minute.values())
    return {
        "name": name,
        "queue": SUBSCRIPTIONS[name].queue_name,
        "status": status,
        "status_text": status_text,
        "alive": stats.is_alive,
        "paused": paused,
        "paused_until": _ms(paused_until) if paused_until else None,
        "heartbeat_age_seconds": None if age is None else round(age, 1),
        "heartbeat_text": "no heartbeat yet" if age is None else f"heartbeat {_duration_text(age)} ago",
        "handled_last_minute": handled,
        "last_minute": stats.last_minute,
        "last_minute_text": _outcomes_text(stats.last_minute),
        "pending_dead_letters": stats.pending_dead_letters,
        "faults": plan.to_dict(),
        "faults_active": plan.active,
        "faults_text": faults_text(plan),
    }


def _chart_series() -> dict:
    depth_keys = [(f"queue.{lane.queue}.ready", lane.queue, lane.color) for lane in LANES[:5]]
    depth_keys.append(("outbox.unpublished", "outbox backlog", "#475569"))
    rate_keys = [("rate.published", "published", "#475569")]
    rate_keys += [(f"rate.consumed.{lane.consumer}", lane.consumer, lane.color)
                  for lane in LANES if lane.consumer]
    samples = metric_series(names=[key for key, _, _ in depth_keys + rate_keys], seconds=CHART_SECONDS)

    def chart(keys):
        return [{"key": key, "name": name, "color": color,
                 "points": [[_ms(at), round(value, 2)] for at, value in samples[key]]} for key, name, color in keys]

    return {"depth": chart(depth_keys), "rates": chart(rate_keys)}


def _scenario_state() -> dict | None:
    progress = scenarios.scenario_progress()
    if progress is None:
        return None
    label = progress.name.replace("_", " ")
    if progress.running:
        text = f"{label}: {progress.placed} of {progress.orders} orders placed"
    else:
        text = f"last {label}: {progress.placed} of {progress.orders} orders placed"
    if progress.skipped:
        text += f", {progress.skipped} skipped (out of stock)"
    if progress.error:
        text += f"; stopped: {progress.error}"
    return {"name": progress.name, "orders": progress.orders, "placed": progress.placed, "skipped": progress.skipped,
            "running": progress.running, "error": progress.error, "text": text,
            "started_at": _ms(datetime.fromisoformat(progress.started_at)) if progress.started_at else None,
            "finished_at": _ms(datetime.fromisoformat(progress.finished_at)) if progress.finished_at else None}


def faults_text(plan: FaultPlan) -> str:
    parts = []
    if plan.fail_share:
        parts.append(f"fail {plan.fail_share:.0%}")
    if plan.fail_first_attempts:
        parts.append(f"fail first {plan.fail_first_attempts} attempts")
    if plan.slow_ms:
        parts.append(f"slow {plan.slow_ms} ms")
    if plan.duplicate_share:
        parts.append(f"duplicates {plan.duplicate_share:.0%}")
    if plan.reorder_window:
        parts.append(f"reorder {plan.reorder_window}")
    if plan.crash_after_commit:
        parts.append("crash armed")
    return ", ".join(parts) or "none"


def _outcomes_text(counts: dict[str, int]) -> str:
    shown = [f"{count} {outcome.replace('_', ' ')}" for outcome, count in counts.items() if count]
    return " · ".join(shown) or "idle"


def _duration_text(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
