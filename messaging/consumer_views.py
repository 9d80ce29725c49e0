"""The consumer panel that the shipping and loyalty dashboards embed (staff only), and its controls.

The panel is one partial (`messaging/consumer/panel.html`); `dashboard.js` fetches it again every
2 s from `consumer_panel`. Every control is a plain POST form that redirects back to the page it
was on (`next`), so the forms keep working however often the panel is swapped.
"""
from __future__ import annotations

import json
import logging
from datetime import datetime
from functools import wraps
from urllib.parse import urlencode

from amqp.exceptions import AMQPError
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST
from kombu.exceptions import KombuError

from messaging.consumer_controls import (
    consumer_dead_letters_discard_all,
    consumer_dead_letters_replay_all,
    consumer_pause,
    consumer_resume,
)
from messaging.dead_letters import (
    BrokerUnavailable,
    dead_letter_get,
    dead_letter_list,
    dead_letters_discard,
    dead_letters_replay_if_broker_reachable,
)
from messaging.models import ConsumerState, DeadLetter, DeliveryOutcome
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
BROKER_ERRORS = (OSError, KombuError, AMQPError)


def staff_required(view):
    """Anonymous visitors go to the login page; signed-in customers get 403."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.user.is_staff:
            raise PermissionDenied("staff only")
        return view(request, *args, **kwargs)

    return wrapper


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


# --- pages -----------------------------------------------------------------------------------------


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


@require_GET
@staff_required
def dead_letter_detail(request, consumer: str, dead_letter_id: int):
    letter = _dead_letter(consumer, dead_letter_id)
    body = bytes(letter.body)
    try:
        body.decode("utf-8")
        is_text = True
    except UnicodeDecodeError:
        is_text = False
    try:
        formatted = json.dumps(json.loads(body), indent=2, ensure_ascii=False) if is_text else ""
    except ValueError:
        formatted = ""
    return render(request, "messaging/consumer/dead_letter.html", {
        "consumer": consumer,
        "letter": letter,
        "body_size": len(body),
        "body_is_text": is_text,
        "body_hex": " ".join(f"{byte:02x}" for byte in body[:512]),
        "body_formatted": formatted,
        "next": _next_url(request, consumer),
    })


# --- controls --------------------------------------------------------------------------------------


@require_POST
@staff_required
def consumer_pause_view(request, consumer: str):
    subscription = SUBSCRIPTIONS[_known(consumer)]
    consumer_pause(consumer=consumer)
    messages.success(request, f"{consumer} is asked to pause: it cancels its subscription within about 5 s, and "
                              f"messages wait in {subscription.queue_name}.")
    return _back(request, consumer)


@require_POST
@staff_required
def consumer_resume_view(request, consumer: str):
    consumer_resume(consumer=_known(consumer))
    messages.success(request, f"{consumer} is asked to resume: it subscribes again within about 5 s.")
    return _back(request, consumer)


@require_POST
@staff_required
def dead_letter_replay(request, consumer: str, dead_letter_id: int):
    letter = _dead_letter(consumer, dead_letter_id)
    try:
        replayed = dead_letters_replay_if_broker_reachable(consumer=consumer, dead_letters=[letter])
    except BrokerUnavailable as error:
        messages.error(request, f"Dead letter {letter.pk} was not replayed: {error}")
        return _back(request, consumer)
    if replayed:
        messages.success(request, f"Replayed dead letter {letter.pk} to {SUBSCRIPTIONS[consumer].queue_name}.")
    else:
        messages.warning(request, f"Dead letter {letter.pk} is already {letter.status}; only pending ones are replayed.")
    return _back(request, consumer)


@require_POST
@staff_required
def dead_letter_discard(request, consumer: str, dead_letter_id: int):
    letter = _dead_letter(consumer, dead_letter_id)
    if dead_letters_discard(consumer=consumer, dead_letters=[letter]):
        messages.success(request, f"Discarded dead letter {letter.pk}.")
    else:
        letter.refresh_from_db()
        messages.warning(request, f"Dead letter {letter.pk} is already {letter.status}; only pending ones are discarded.")
    return _back(request, consumer)


@require_POST
@staff_required
def dead_letters_replay_all(request, consumer: str):
    try:
        replayed = consumer_dead_letters_replay_all(consumer=_known(consumer))
    except BrokerUnavailable as error:
        messages.error(request, f"Not all dead letters were replayed: {error}")
        return _back(request, consumer)
    messages.success(request, f"Replayed {_plural(replayed, 'dead letter')} to {SUBSCRIPTIONS[consumer].queue_name}.")
    return _back(request, consumer)


@require_POST
@staff_required
def dead_letters_discard_all(request, consumer: str):
    discarded = consumer_dead_letters_discard_all(consumer=_known(consumer))
    messages.success(request, f"Discarded {_plural(discarded, 'dead letter')}.")
    return _back(request, consumer)


# --- helpers ---------------------------------------------------------------------------------------


def _known(consumer: str) -> str:
    if consumer not in SUBSCRIPTIONS:
        raise Http404(f"no consumer {consumer!r}")
    return consumer


def _dead_letter(consumer: str, dead_letter_id: int) -> DeadLetter:
    try:
        return dead_letter_get(consumer=_known(consumer), dead_letter_id=dead_letter_id)
    except DeadLetter.DoesNotExist:
        raise Http404(f"no dead letter {dead_letter_id} for {consumer}") from None


def _next_url(request, consumer: str) -> str:
    """Where a control sends staff back to: the page the panel is on, if it is one of ours."""
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(candidate, allowed_hosts={request.get_host()},
                                                     require_https=request.is_secure()):
        return candidate
    return reverse("consumers:consumer", args=[consumer])


def _back(request, consumer: str):
    return redirect(f"{_next_url(request, consumer)}#consumer-{consumer}")


def _queues_of(subscription) -> tuple[list, str]:
    """The subscription's queue and its dead queue as the broker reports them, or why it could not."""
    wanted = [subscription.queue_name, subscription.dead_queue_name]
    try:
        depths = {depth.queue: depth for depth in queue_depths()}
    except BROKER_ERRORS as error:
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


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
