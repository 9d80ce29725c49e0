"""The consumer panel: everything it shows about one consumer, and the two pages that show it."""
from __future__ import annotations

import logging
from datetime import datetime
from urllib.parse import urlencode

from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from messaging.brokers import BrokerError
from messaging.consumer_views.common import _known, _next_url, staff_required
from messaging.dead_letters import dead_letter_list
from messaging.models import ConsumerState, DeliveryOutcome
from messaging.selectors import consumer_stats, queue_depths
from messaging.topology import SUBSCRIPTIONS

logger = logging.getLogger(__name__)

DEAD_LETTERS_SHOWN = 20
RECENT_ATTEMPTS_SHOWN = 20
# The panel's rows, in the order an operator reads them: what was done, what was skipped, what failed.
OUTCOME_ROWS = [
    (DeliveryOutcome.APPLIED, "processed", "#16a34a"),
    (DeliveryOutcome.DUPLICATE, "duplicates skipped", "#6366f1"),
    (DeliveryOutcome.STALE, "stale, skipped", "#a16207"),
    (DeliveryOutcome.EARLY, "early, applied", "#0891b2"),
    (DeliveryOutcome.RETRY, "retries", "#ea580c"),
    (DeliveryOutcome.DEAD_LETTERED, "dead-lettered", "#dc2626"),
]


def consumer_panel_context(request, *, consumer: str, next_url: str) -> dict:
    """Everything the panel partial shows about one consumer, read fresh."""
    subscription = SUBSCRIPTIONS[consumer]
    stats = consumer_stats(consumer=consumer, recent=RECENT_ATTEMPTS_SHOWN)
    queues, broker_error = _queues_of(subscription)
    paused_until = _paused_until(subscription)
    return {
        "consumer": consumer,
        "subscription": subscription,
        "bindings": subscription.bindings(),
        "stats": stats,
        "paused": stats.paused or paused_until is not None,
        "paused_until": paused_until,
        "heartbeat_age": _age_text(stats.heartbeat_age_seconds),
        "counts": [
            {"outcome": outcome.value, "label": label, "color": color,
             "last_minute": stats.last_minute.get(outcome.value, 0), "total": stats.totals.get(outcome.value, 0)}
            for outcome, label, color in OUTCOME_ROWS
        ],
        "chart": {
            "yLabel": "",  # the heading says "per minute"; charts.js would draw it over the top tick
            "series": [
                {"name": label, "color": color,
                 "points": [[int(row["minute"].timestamp() * 1000), row[outcome.value]] for row in stats.per_minute]}
                for outcome, label, color in OUTCOME_ROWS
            ],
        },
        "queues": queues,
        "broker_error": broker_error,
        "embedded_broker": bool(queues) and all(queue.consumers is None for queue in queues),
        "dead_letters": list(dead_letter_list(consumer=consumer)[:DEAD_LETTERS_SHOWN]),
        "next": next_url,
        "panel_url": f"{reverse('consumers:consumer_panel', args=[consumer])}?{urlencode({'next': next_url})}",
    }


@require_GET
@staff_required
def consumer_detail(request, consumer: str):
    """One consumer's panel on a page of its own (the shop's listener has no dashboard of its own)."""
    _known(consumer)
    panel = consumer_panel_context(request, consumer=consumer, next_url=request.path)
    return render(request, "messaging/consumer/detail.html", {"panel": panel})


@require_GET
@staff_required
def consumer_panel(request, consumer: str):
    _known(consumer)
    panel = consumer_panel_context(request, consumer=consumer, next_url=_next_url(request, consumer))
    return render(request, "messaging/consumer/panel.html", {"panel": panel})


def _queues_of(subscription) -> tuple[list, str]:
    """The subscription's queue and its dead queue as the broker reports them, or why it could not."""
    wanted = [subscription.queue_name, subscription.dead_queue_name]
    try:
        depths = {depth.queue: depth for depth in queue_depths()}
    except BrokerError as error:
        logger.warning("queue depths unavailable: %s", error)
        return [], f"the broker cannot be reached: {error}"
    return [depths[name] for name in wanted if name in depths], ""


def _paused_until(subscription) -> datetime | None:
    state = ConsumerState.objects.using(subscription.database).filter(consumer=subscription.name).first()
    return state.resumes_at if state else None


def _age_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"
