"""The operations view (staff only): the whole flow live, the controls to disturb it, one order's journey.

`/ops/` renders everything once on the server; `ops.js` then polls `/ops/state.json` (the same
numbers, built by `operations_state`) every 2 s and updates the page in place. Every control is a
small POST form that calls one function in messaging/operations.py (or shop/scenarios.py) and
redirects back with a message saying what happened.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import wraps

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from messaging.dead_letters import BrokerUnavailable
from messaging.faults import FaultPlan
from messaging.models import ConsumerState, OutboxMessage
from messaging.operations import (
    POISON_KINDS,
    consumer_faults_clear,
    consumer_faults_update,
    consumer_outage_start,
    consumer_pause,
    consumer_resume,
    poison_message_inject,
)
from messaging.selectors import consumer_stats, delivery_journey, metric_series, outbox_backlogs, queue_depths
from messaging.topology import SUBSCRIPTIONS, UNROUTED_QUEUE
from shop import scenarios
from shop import selectors as shop_selectors
from shop.models import Order

logger = logging.getLogger(__name__)

CHART_SECONDS = 600
OUTAGE_SECONDS = 30
SPIKE_ORDERS, SPIKE_SECONDS = 300, 10
POISON_SCENARIO_ORDERS = 3
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
    Lane(UNROUTED_QUEUE.name, "events no queue was bound for (RabbitMQ's alternate exchange): should stay at 0",
         None, "nobody", "left for an operator to look at", "#64748b"),
]


@dataclass(frozen=True)
class FaultControl:
    name: str  # a FaultPlan field
    label: str
    explanation: str
    minimum: Decimal
    maximum: Decimal
    step: str
    unit: str


FAULT_CONTROLS = [
    FaultControl("fail_share", "Fail a share", "fails this share of messages with a transient error: retried "
                 "with backoff, dead-lettered after the last attempt", Decimal(0), Decimal(1), "0.05", "0–1"),
    FaultControl("slow_ms", "Slow down", "sleeps this long in every handler call, like a slow downstream: "
                 "its queue grows", Decimal(0), Decimal(10000), "50", "ms"),
    FaultControl("duplicate_share", "Duplicates", "handles this share of messages twice, as a broker "
                 "redelivery would: the inbox skips the copy", Decimal(0), Decimal(1), "0.05", "0–1"),
    FaultControl("reorder_window", "Out of order", "holds this many messages and handles them newest first: "
                 "older events arriving late are skipped as stale", Decimal(0), Decimal(100), "1", "messages"),
]
FAULT_CONTROLS_BY_NAME = {control.name: control for control in FAULT_CONTROLS}
INTEGER_FAULTS = {"slow_ms", "reorder_window"}


def staff_required(view):
    """Anonymous users go to the login page; signed-in customers get 403 (a redirect would loop)."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.user.is_staff:
            raise PermissionDenied("the operations view is for staff")
        return view(request, *args, **kwargs)

    return wrapped


# --- pages -------------------------------------------------------------------------------------


@require_GET
@staff_required
def overview(request):
    state = operations_state()
    return render(request, "messaging/ops/overview.html", {
        "state": state,
        "lanes": _lanes_for_template(state),
        "consumers": [state["consumers"][name] for name in SUBSCRIPTIONS],
        "fault_rows": [{"control": control, "cells": [{"consumer": name, "value": state["consumers"][name]["faults"][control.name]}
                                                      for name in SUBSCRIPTIONS]} for control in FAULT_CONTROLS],
        "poison_kinds": POISON_KINDS,
        "checkout_latency_html": _checkout_latency_html(request),
        "spike": {"orders": SPIKE_ORDERS, "seconds": SPIKE_SECONDS},
        "outage_seconds": OUTAGE_SECONDS,
        "poison_scenario_orders": POISON_SCENARIO_ORDERS,
    })


@require_GET
@staff_required
def state_json(request):
    state = operations_state()
    state["checkout_latency_html"] = _checkout_latency_html(request)
    return JsonResponse(state)


@require_GET
@staff_required
def journey_search(request):
    query = request.GET.get("order", "").strip()
    order = None
    if query.lstrip("#").isdigit():
        order = Order.objects.filter(pk=int(query.lstrip("#"))).first()
    elif query:
        order = Order.objects.filter(number__iexact=query).first()
    if order is None:
        messages.error(request, f"No order {query!r}: give an order id (42) or number (ES-…)." if query else
                       "Give an order id or number.")
        return redirect("ops:overview")
    return redirect("ops:order_journey", order_id=order.pk)


@require_GET
@staff_required
def order_journey(request, order_id: int):
    order = Order.objects.filter(pk=order_id).first()
    rows = _journey_rows(order_id)
    if order is None and not rows:
        raise Http404(f"no order {order_id}")
    event_correlation_ids = sorted({row["correlation_id"] for row in rows if row["correlation_id"]})
    return render(request, "messaging/ops/order_journey.html", {
        "order": order, "order_id": order_id, "rows": rows, "event_correlation_ids": event_correlation_ids,
    })


# --- controls ----------------------------------------------------------------------------------


class FaultForm(forms.Form):
    fault = forms.ChoiceField(choices=[(name, name) for name in [*FAULT_CONTROLS_BY_NAME, "crash_after_commit", "clear"]])
    value = forms.DecimalField(required=False)

    def clean(self):
        data = super().clean()
        control = FAULT_CONTROLS_BY_NAME.get(data.get("fault"))
        if control is None:
            return data
        value = data.get("value")
        if value is None or not control.minimum <= value <= control.maximum:
            raise forms.ValidationError(f"{control.label}: give a value from {control.minimum} to {control.maximum}.")
        data["value"] = int(value) if control.name in INTEGER_FAULTS else float(value)
        return data


@require_POST
@staff_required
def consumer_faults(request, consumer: str):
    _subscription_or_404(consumer)
    form = FaultForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(error for errors in form.errors.values() for error in errors))
        return redirect("ops:overview")
    fault, value = form.cleaned_data["fault"], form.cleaned_data["value"]
    if fault == "clear":
        consumer_faults_clear(consumer=consumer)
        messages.success(request, f"{consumer}: faults cleared (it notices within a heartbeat, ~5 s).")
    elif fault == "crash_after_commit":
        consumer_faults_update(consumer=consumer, crash_after_commit=True)
        messages.success(request, f"{consumer} will crash once after its next commit, before the ack: "
                                  "the broker redelivers that message and the inbox skips it as a duplicate. "
                                  "Restart the process if nothing restarts it for you.")
    else:
        plan = consumer_faults_update(consumer=consumer, **{fault: value})
        control = FAULT_CONTROLS_BY_NAME[fault]
        shown = f"{value:.0%}" if control.unit == "0–1" else f"{value} {control.unit}"
        messages.success(request, f"{consumer}: {control.label.lower()} set to {shown}; "
                                  f"faults now: {faults_text(plan)} (in effect within ~5 s).")
    return redirect("ops:overview")


@require_POST
@staff_required
def consumer_pause_view(request, consumer: str):
    _subscription_or_404(consumer)
    consumer_pause(consumer=consumer)
    messages.success(request, f"{consumer} stops within a heartbeat (~5 s); its messages wait in "
                              f"{SUBSCRIPTIONS[consumer].queue_name}.")
    return redirect("ops:overview")


@require_POST
@staff_required
def consumer_resume_view(request, consumer: str):
    _subscription_or_404(consumer)
    consumer_resume(consumer=consumer)
    messages.success(request, f"{consumer} starts again within a heartbeat (~5 s) and works through its queue.")
    return redirect("ops:overview")


@require_POST
@staff_required
def poison_inject(request):
    kind = request.POST.get("kind", "")
    if kind not in POISON_KINDS:
        messages.error(request, f"Unknown poison message {kind!r}.")
        return redirect("ops:overview")
    try:
        poison = poison_message_inject(kind=kind)
    except BrokerUnavailable as error:
        messages.error(request, str(error))
        return redirect("ops:overview")
    messages.success(request, f"Published {POISON_KINDS[kind]} to shop.events ({poison.routing_key}): shipping and "
                              "loyalty dead-letter it, and every other message flows on.")
    return redirect("ops:overview")


@require_POST
@staff_required
def scenario_traffic_spike(request):
    try:
        scenarios.traffic_spike_start(orders=SPIKE_ORDERS, seconds=SPIKE_SECONDS)
    except (scenarios.ScenarioAlreadyRunning, ValueError) as error:
        messages.error(request, f"Traffic spike not started: {error}.")
        return redirect("ops:overview")
    messages.success(request, f"Traffic spike: {SPIKE_ORDERS} orders over {SPIKE_SECONDS} s as the demo customer. "
                              "Watch the queues grow while the shop answers at once, then drain.")
    return redirect("ops:overview")


@require_POST
@staff_required
def scenario_loyalty_outage(request):
    consumer_outage_start(consumer="loyalty", seconds=OUTAGE_SECONDS)
    messages.success(request, f"Loyalty is down for {OUTAGE_SECONDS} s (from its next heartbeat): loyalty.events "
                              "piles up while shipping goes on; then loyalty catches up by itself.")
    return redirect("ops:overview")


@require_POST
@staff_required
def scenario_poison_message(request):
    try:
        poison_message_inject(kind="not_json")
    except BrokerUnavailable as error:
        messages.error(request, str(error))
        return redirect("ops:overview")
    try:
        orders = scenarios.demo_orders_place(count=POISON_SCENARIO_ORDERS, correlation_prefix="after-poison")
    except ValueError as error:
        messages.error(request, f"Poison published, but no orders placed: {error}.")
        return redirect("ops:overview")
    messages.success(request, f"Published a poison message, then placed {len(orders)} orders "
                              f"({', '.join(order.number for order in orders)}): the poison lands in shipping's and "
                              "loyalty's dead letters, the orders are processed as usual.")
    return redirect("ops:overview")


# --- the numbers -------------------------------------------------------------------------------


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
    if progress.running:
        text = f"traffic spike: {progress.placed} of {progress.orders} orders placed"
    else:
        text = f"last traffic spike: {progress.placed} of {progress.orders} orders placed"
    if progress.skipped:
        text += f", {progress.skipped} skipped (out of stock)"
    if progress.error:
        text += f"; stopped: {progress.error}"
    return {"name": progress.name, "orders": progress.orders, "placed": progress.placed, "skipped": progress.skipped,
            "running": progress.running, "error": progress.error, "text": text,
            "started_at": _ms(datetime.fromisoformat(progress.started_at)) if progress.started_at else None,
            "finished_at": _ms(datetime.fromisoformat(progress.finished_at)) if progress.finished_at else None}


def _journey_rows(order_id: int) -> list[dict]:
    rows = []
    for alias in settings.DATABASES:
        for message in OutboxMessage.objects.using(alias).filter(subject=str(order_id)):
            published = (f"published after {_duration_text((message.published_at - message.created_at).total_seconds())}"
                         if message.published_at else "waiting to be published")
            rows.append({
                "at": message.created_at, "kind": "event", "where": f"{message.source.strip('/')} outbox",
                "event_type": message.event_type, "sequence": message.sequence, "attempt": message.publish_attempts,
                "outcome": "published" if message.published_at else "unpublished", "reason": published,
                "detail": message.last_error, "worker": "", "duration_ms": None,
                "correlation_id": message.correlation_id, "event_id": str(message.event_id),
            })
    for attempt in delivery_journey(subject=str(order_id)):
        rows.append({
            "at": attempt.created_at, "kind": "delivery", "where": attempt.consumer,
            "event_type": attempt.event_type, "sequence": attempt.sequence, "attempt": attempt.attempt,
            "outcome": attempt.outcome, "reason": attempt.reason, "detail": attempt.detail, "worker": attempt.worker,
            "duration_ms": attempt.duration_ms, "correlation_id": attempt.correlation_id,
            "event_id": str(attempt.event_id or ""),
        })
    for row in rows:
        row["outcome_label"] = row["outcome"].replace("_", " ")
    return sorted(rows, key=lambda row: row["at"])


# --- helpers -----------------------------------------------------------------------------------


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


def _lanes_for_template(state: dict) -> list[dict]:
    return [{"lane": lane, "queue": state["queues"][lane.queue],
             "consumer": state["consumers"].get(lane.consumer) if lane.consumer else None} for lane in LANES]


def _checkout_latency_html(request) -> str:
    """The shop's checkout-mode panel; "" while the shop does not provide it (the page says so)."""
    try:
        template = get_template("shop/ops/_checkout_latency.html")
    except TemplateDoesNotExist:
        return ""
    if hasattr(shop_selectors, "checkout_latency_context"):
        context = shop_selectors.checkout_latency_context()
    elif hasattr(shop_selectors, "checkout_latency_summary"):
        context = {"checkout_latency_summary": shop_selectors.checkout_latency_summary()}
    else:
        return ""
    return template.render(context, request)


def _subscription_or_404(consumer: str) -> None:
    if consumer not in SUBSCRIPTIONS:
        raise Http404(f"no consumer {consumer!r}")


def _duration_text(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)

