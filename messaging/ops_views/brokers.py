"""/ops/brokers/: the brokers side by side: what each adapter declares, the last comparison's figures, a short run."""
from __future__ import annotations

from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from messaging.broker_comparison import comparison_progress, comparison_results, comparison_start_quick
from messaging.brokers import adapter_class, broker_kind
from messaging.ops_views.access import staff_required

COLUMNS = (("embedded", "embedded"), ("rabbitmq", "RabbitMQ"), ("activemq", "ActiveMQ"), ("sqs", "SQS (emulator)"))
# (title, step, figure, unit, note): one bar chart per figure.
CHARTS = (
    ("Publish with confirmation, relay path", "publish", "relay_msg_s", "msg/s", "outbox rows through the bus, batches"),
    ("Plain publish loop", "publish", "plain_msg_s", "msg/s", "one confirmed message per call"),
    ("Purchase → shipment, p50", "latency", "p50_ms", "ms", "lower is better"),
    ("Purchase → shipment, p99", "latency", "p99_ms", "ms", "lower is better"),
    ("Consumer throughput, 1 process", "consumers_1", "msg_s", "msg/s", ""),
    ("Consumer throughput, 2 processes", "consumers_2", "msg_s", "msg/s", ""),
    ("Orders seen out of order, 2 consumers", "ordering_2", "out_of_order", "orders", ""),
    ("The same, ordering option on", "ordering_option", "out_of_order", "orders", ""),
    ("Redelivered after a consumer SIGKILL", "kill", "redelivered", "messages", ""),
    ("Broker memory", "memory", "mib", "MiB", "RSS of the broker process; embedded: its file"),
)


def _matrix() -> dict:
    from bench.broker_matrix import ROW_LABELS, adapter_classes

    adapters = adapter_classes()
    return {"columns": [adapter.capabilities.name for adapter in adapters],
            "rows": [{"label": label, "cells": [getattr(adapter.capabilities, field) for adapter in adapters]}
                     for field, label in ROW_LABELS.items()]}


def _charts(results: dict) -> list[dict]:
    charts = []
    for title, step, figure, unit, note in CHARTS:
        bars = []
        for key, label in COLUMNS:
            broker = results.get("brokers", {}).get(key)
            if broker is None:
                continue
            value = (broker.get("steps", {}).get(step) or {}).get(figure) if broker.get("status") == "measured" else None
            why = "" if value is not None else (broker.get("reason") or
                                               (broker.get("steps", {}).get(step) or {}).get("reason") or
                                               (broker.get("steps", {}).get(step) or {}).get("error") or "not measured")
            bars.append({"broker": key, "label": label, "value": value, "why": why[:120]})
        top = max([bar["value"] for bar in bars if isinstance(bar["value"], (int, float))] or [0])
        for index, bar in enumerate(bars):
            bar["y"] = 6 + index * 26
            bar["width"] = round(300 * bar["value"] / top, 1) if top and isinstance(bar["value"], (int, float)) else 0
        charts.append({"title": title, "unit": unit, "note": note, "bars": bars, "height": 12 + len(bars) * 26,
                       "step": step, "figure": figure})
    return charts


def _table(results: dict) -> list[dict]:
    from bench.comparison.report import ROWS, _step_cell

    brokers = results.get("brokers", {})
    present = [key for key, _ in COLUMNS if key in brokers]
    return [{"label": label, "cells": [_step_cell(brokers[key], step, render) for key in present]}
            for label, step, render in ROWS]


@require_GET
@staff_required
def brokers_page(request):
    results = comparison_results()
    context = {
        "current": {"kind": broker_kind(), "name": adapter_class().capabilities.name},
        "matrix": _matrix(),
        "results": results,
        "progress": comparison_progress(),
    }
    if results:
        context.update(charts=_charts(results), table=_table(results),
                       table_columns=[label for key, label in COLUMNS if key in results.get("brokers", {})],
                       statuses=[{"label": label, **results["brokers"][key]} for key, label in COLUMNS
                                 if key in results.get("brokers", {})])
    return render(request, "messaging/ops/brokers.html", context)


@require_GET
@staff_required
def brokers_progress(request):
    return JsonResponse({"progress": comparison_progress(), "results_run_id": (comparison_results() or {}).get("run_id")})


@require_POST
@staff_required
def brokers_run(request):
    if comparison_start_quick():
        messages.success(request, "A quick comparison started in the background: its progress shows below.")
    else:
        messages.error(request, "A comparison is running already: wait for it to finish.")
    return redirect("ops:brokers")
