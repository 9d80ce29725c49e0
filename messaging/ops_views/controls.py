"""The operations view's controls: POST forms for faults, pause and resume, poison messages and scenarios."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django import forms
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from messaging.dead_letters import BrokerUnavailable
from messaging.operations import (
    POISON_KINDS,
    consumer_faults_clear,
    consumer_faults_update,
    consumer_outage_start,
    consumer_pause,
    consumer_resume,
    poison_message_inject,
)
from messaging.ops_views.access import staff_required
from messaging.ops_views.state import faults_text
from messaging.topology import SUBSCRIPTIONS
from shop import scenarios

OUTAGE_SECONDS = 30
# Orders placed while loyalty is down, so its queue visibly piles up (and drains when it returns).
OUTAGE_ORDERS, OUTAGE_ORDERING_SECONDS = 60, 20
SPIKE_ORDERS, SPIKE_SECONDS = 300, 10
POISON_SCENARIO_ORDERS = 3


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
    try:
        scenarios.traffic_spike_start(orders=OUTAGE_ORDERS, seconds=OUTAGE_ORDERING_SECONDS, name="loyalty_outage")
    except (scenarios.ScenarioAlreadyRunning, ValueError) as error:
        messages.warning(request, f"Loyalty is down for {OUTAGE_SECONDS} s, but no orders were placed: {error}.")
        return redirect("ops:overview")
    messages.success(request, f"Loyalty is down for {OUTAGE_SECONDS} s (from its next heartbeat), and {OUTAGE_ORDERS} "
                              f"orders arrive over {OUTAGE_ORDERING_SECONDS} s: loyalty.events piles up while shipping "
                              "goes on; then loyalty catches up by itself.")
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


def _subscription_or_404(consumer: str) -> None:
    if consumer not in SUBSCRIPTIONS:
        raise Http404(f"no consumer {consumer!r}")
