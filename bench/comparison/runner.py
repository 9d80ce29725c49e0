"""One comparison run: the same workload on each broker in turn, a progress bar per broker, one JSON file.

Each broker gets a fresh deployment (`setups.broker_setup` + the integration tests' `Stack`) and
the steps below, in this order: the steps that leave events in queues come last. A step that fails
is recorded with its error and the run goes on; a broker that cannot be reached is skipped with
the reason.
"""
from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from bench.comparison import measures, setups
from messaging.brokers import EventBus
from bench.comparison.progress import Progress

RESULTS_NAME = "brokers-comparison.json"
PROGRESS_NAME = "brokers-progress.json"
DOCS_COPY = Path(__file__).resolve().parents[2] / "docs" / RESULTS_NAME
SCHEMA = 1


@dataclass(frozen=True)
class Load:
    """How much each step does. `--quick` is a smoke run of a few dozen messages per broker."""

    messages: int  # publish, consumer throughput and kill: events per measurement
    orders: int  # purchase-to-shipment: orders placed through the API
    order_rate: float  # orders per second
    ordering_orders: int  # orders per ordering measurement (two events each)
    restart_orders: int  # orders placed around a broker restart
    restart: bool  # restart the machine's broker mid-run (never from --quick)
    steps: tuple[str, ...] = ()  # only these steps (and the deployment); all when empty

    @classmethod
    def for_options(cls, *, messages: int | None, quick: bool, restart: bool, steps: tuple[str, ...] = ()) -> Load:
        unknown = set(steps) - set(STEP_LABELS)
        if unknown:
            raise SystemExit(f"unknown step(s) {', '.join(sorted(unknown))}; choose from {', '.join(STEP_LABELS)}")
        if quick:
            messages = messages or 30
            return cls(messages, orders=10, order_rate=2.0, ordering_orders=max(5, messages // 2), restart_orders=0,
                       restart=False, steps=steps)
        messages = messages or 1000
        return cls(messages, orders=max(20, messages // 5), order_rate=5.0, ordering_orders=max(10, messages // 2),
                   restart_orders=max(30, messages // 10), restart=restart, steps=steps)


def _steps(load: Load) -> list[tuple[str, str]]:
    """(key, label) of each step this run takes, for the progress bar."""
    return [(key, label) for key, label in STEP_LABELS.items() if key == "prepare" or not load.steps or key in load.steps]


STEP_LABELS = {
    "prepare": "a fresh deployment",
    "latency": "purchase to shipment",
    "consumers_1": "consumer throughput, 1 process",
    "consumers_2": "consumer throughput, 2 processes",
    "ordering_1": "ordering, 1 consumer",
    "ordering_2": "ordering, 2 consumers",
    "ordering_option": "ordering, 2 consumers, ordering option on",
    "kill": "a consumer SIGKILLed",
    "restart": "a broker restart",
    "publish": "publish throughput",
    "memory": "broker memory",
}


def machine() -> dict:
    return {"hostname": platform.node(), "cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "load_average_at_start": [round(v, 2) for v in os.getloadavg()]}


def _measure_broker(broker: str, load: Load, progress: Progress, folder: Path) -> dict:
    from tests.integration.stack import Stack

    steps = _steps(load)
    result: dict = {"status": "measured", "steps": {}}
    try:
        with setups.broker_setup(broker, folder) as setup:
            result["broker_url"] = EventBus.describe_url(setup.backend.broker_url.split("?")[0])
            result["ordering_option"] = setup.ordering_option
            log_dir = folder / f"{broker}-logs"
            log_dir.mkdir(parents=True, exist_ok=True)
            stack = Stack(setup.backend.env(), log_dir=log_dir)
            stack.backend = setup.backend
            stack.env.update({"LOG_LEVEL": "WARNING"})
            actions = {
                "prepare": lambda: stack.prepare() and None,
                "latency": lambda: measures.purchase_to_shipment_latency(stack, orders=load.orders, rate=load.order_rate),
                "consumers_1": lambda: measures.consumer_throughput(stack, messages=load.messages, processes=1),
                "consumers_2": lambda: measures.consumer_throughput(stack, messages=load.messages, processes=2),
                "ordering_1": lambda: measures.ordering(stack, orders=load.ordering_orders, processes=1),
                "ordering_2": lambda: measures.ordering(stack, orders=load.ordering_orders, processes=2),
                "ordering_option": lambda: (
                    {"status": "not measurable", "reason": f"no ordering option: {setup.ordering_option}"}
                    if setup.ordered_url is None else
                    {**measures.ordering(stack, orders=load.ordering_orders, processes=2, url=setup.ordered_url),
                     "option": setup.ordering_option}),
                "kill": lambda: measures.consumer_kill(stack, messages=load.messages),
                "restart": lambda: (
                    measures.broker_restart(stack, setup, orders=load.restart_orders, rate=load.order_rate)
                    if load.restart or setups.restart_plan(broker)[0] != "restart" else
                    {"status": "skipped", "reason": "not in this run (--quick or --no-restart): it restarts the "
                                                    "machine's shared broker"}),
                "publish": lambda: measures.publish_throughput(stack, load.messages),
                "memory": lambda: setups.broker_memory(setup),
            }
            try:
                for index, (key, label) in enumerate(steps):
                    progress.step(broker, index, len(steps), label)
                    started = time.monotonic()
                    try:
                        value = actions[key]()
                    except Exception as error:  # noqa: BLE001 - one failed step must not end the run
                        value = {"error": f"{type(error).__name__}: {error}"[:1500]}
                        traceback.print_exc(file=sys.stderr)
                        if key == "prepare":
                            raise
                    if value is not None:
                        value["step_seconds"] = round(time.monotonic() - started, 1)
                        result["steps"][key] = value
                    if key in ("latency", "restart"):
                        stack.stop_all()
            finally:
                stack.stop_all()
    except setups.Unavailable as reason:
        return {"status": "skipped", "reason": str(reason)}
    except Exception as error:  # noqa: BLE001
        result.update(status="failed", reason=f"{type(error).__name__}: {error}"[:1500])
    progress.step(broker, len(steps), len(steps), result["status"])
    return result


def run_comparison(*, brokers: list[str], load: Load, var_dir: Path, docs_copy: Path | None, run_id: str | None = None,
                   out=sys.stdout) -> dict:
    """Measure each broker in turn; write var_dir/brokers-comparison.json (and `docs_copy`); return it."""
    var_dir.mkdir(parents=True, exist_ok=True)
    logging.getLogger("stomp.py").setLevel(logging.WARNING)  # one line per connection otherwise, between the bars
    run_id = run_id or uuid.uuid4().hex
    results = {"schema": SCHEMA, "run_id": run_id, "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "quick": not load.restart and load.restart_orders == 0, "load": asdict(load), "machine": machine(),
               "matrix": capability_matrix(), "brokers": {}}
    progress = Progress(var_dir / PROGRESS_NAME, run_id=run_id, brokers=brokers, out=out)
    folder = Path(tempfile.mkdtemp(prefix="eventshop-compare-"))
    try:
        for broker in brokers:
            results["brokers"][broker] = _measure_broker(broker, load, progress, folder)
        results["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        text = json.dumps(results, indent=2) + "\n"
        (var_dir / RESULTS_NAME).write_text(text)
        if docs_copy is not None:
            docs_copy.write_text(text)
        progress.finish("done")
    except BaseException as error:
        progress.finish("failed", f"{type(error).__name__}: {error}")
        raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return results


def capability_matrix() -> dict:
    """Each adapter's `capabilities` record, by broker kind."""
    from dataclasses import asdict as record

    from bench.broker_matrix import adapter_classes

    kinds = {"RabbitMQBus": "rabbitmq", "EmbeddedBus": "embedded", "SqsBus": "sqs", "ActiveMQBus": "activemq"}
    return {kinds[adapter.__name__]: record(adapter.capabilities) for adapter in adapter_classes()}
