"""The operations view's pages: the overview, its state.json, and one order's journey."""
from __future__ import annotations

from django.contrib import messages
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.views.decorators.http import require_GET

from messaging.operations import POISON_KINDS
from messaging.ops_views.access import staff_required
from messaging.ops_views.controls import (
    FAULT_CONTROLS,
    OUTAGE_SECONDS,
    POISON_SCENARIO_ORDERS,
    SPIKE_ORDERS,
    SPIKE_SECONDS,
)
from messaging.ops_views.journey import _journey_rows
from messaging.ops_views.state import LANES, operations_state
from messaging.topology import SUBSCRIPTIONS
from shop import selectors as shop_selectors
from shop.models import Order


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
