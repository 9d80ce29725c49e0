"""How fast the real shipping consumer applies purchases, with 1 and 2 competing processes, and its memory.

    .venv/bin/python bench/consumer_throughput.py                  # both backends, 2,000 events, 1 and 2 processes
    .venv/bin/python bench/consumer_throughput.py --backend embedded --messages 500 --processes 1

For each backend (RabbitMQ + PostgreSQL in a fresh vhost and fresh databases; the embedded SQLite
broker and SQLite files in a temporary folder):
1. start one `manage.py consume shipping` on the empty queue, wait for its first heartbeat and read
   its resident memory (VmRSS): the idle footprint; stop it;
2. for each process count: put N fresh purchase events (distinct orders, ~740 bytes each) on the
   shipping queue, start that many `manage.py consume shipping` processes, and poll
   `DeliveryAttempt` until all N are recorded. Each message takes the full production path: inbox
   insert, subject progress row lock, shipment insert, outbox row, the label job sent to Celery's
   broker, the attempt record, one commit; then `ShipmentCreated` published after commit (waiting
   for its publisher confirm), then the ack.
Reports msg/s from the first to the last recorded attempt (process start-up excluded), the wall time
from starting the processes, the outcomes (all must be `applied`) and each process's peak resident
memory (VmHWM from /proc/<pid>/status, read just before it is stopped).
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BACKENDS, PROJECT_ROOT, backend, django_setup, run_child  # noqa: E402

TIMEOUT_SECONDS = 150


def memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise LookupError(field)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


VARIANTS = ("plain", "today", "new")


def consumers_start(count: int, log_dir: Path, variant: str, env: dict) -> list[subprocess.Popen]:
    """`count` processes of one variant: the plain loop, or `manage.py consume shipping` from the code
    under test ("new": this checkout) or from the comparison checkout ("today": --compare-root)."""
    if variant == "plain":
        command, cwd = [sys.executable, str(PROJECT_ROOT / "bench" / "plain_consumer.py")], PROJECT_ROOT
    else:
        cwd = Path(env["BENCH_COMPARE_ROOT"]) if variant == "today" else PROJECT_ROOT
        command = [sys.executable, "manage.py", "consume", "shipping", *env.get("BENCH_CONSUME_ARGS", "").split()]
    return [subprocess.Popen(command, cwd=cwd, env={**env, "PYTHONPATH": str(cwd)},
                             stdout=open(log_dir / f"{variant}-{index}.log", "ab"), stderr=subprocess.STDOUT)
            for index in range(count)]


def consumers_stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def child(messages: int, process_counts: list[int], variants: list[str], latency_orders: int,
          memory_messages: int) -> dict:
    django_setup()
    from collections import Counter

    from django.db import connections
    from django.db.models import Max, Min

    from messaging.brokers import OutgoingMessage
    from messaging.events import CONTENT_TYPE, Envelope
    from messaging.models import ConsumerState, DeliveryAttempt
    from messaging.topology import SUBSCRIPTIONS, event_bus_connect

    from bench.common import purchase_event

    subscription = SUBSCRIPTIONS["shipping"]
    attempts = DeliveryAttempt.objects.using("shipping").filter(consumer="shipping")
    log_dir = Path(tempfile.mkdtemp(prefix="eventshop-bench-logs-"))
    env = {**os.environ}
    event_bus_connect().close()  # the topology, declared once
    next_order_id = [1]

    def preload(count: int) -> None:
        """`count` fresh purchases straight onto the shipping queue, confirmed by the broker (a fresh
        connection each time: an idle STOMP connection misses its heartbeats while consumers run)."""
        with event_bus_connect() as bus:
            _preload(bus, count)

    def _preload(bus, count: int) -> None:
        batch = []
        for _ in range(count):
            envelope = Envelope(event=purchase_event(next_order_id[0]), sequence=1)
            next_order_id[0] += 1
            batch.append(OutgoingMessage(message_id=str(envelope.id), routing_key=envelope.type,
                                         body=envelope.to_json().encode(), content_type=CONTENT_TYPE,
                                         headers={"ce-type": envelope.type}))
            if len(batch) == 200:
                assert bus.send_to_queue(subscription.queue_name, batch).error is None
                batch = []
        if batch:
            assert bus.send_to_queue(subscription.queue_name, batch).error is None

    def plain_done() -> tuple[int, list[float]]:
        with connections["shipping"].cursor() as cursor:
            try:
                cursor.execute("SELECT processed_at FROM bench_plain_inbox")
            except Exception:  # the table is made by the plain consumer at its start
                return 0, []
            times = [row[0] for row in cursor.fetchall()]
        return len(times), times

    def run(variant: str, count: int, n: int) -> dict:
        preload(n)
        if variant == "plain":
            with connections["shipping"].cursor() as cursor:
                cursor.execute("DROP TABLE IF EXISTS bench_plain_inbox")
        last_id_before = attempts.aggregate(last=Max("id"))["last"] or 0
        this_run = attempts.filter(id__gt=last_id_before)
        started = time.perf_counter()
        processes = consumers_start(count, log_dir, variant, env)
        deadline = time.monotonic() + TIMEOUT_SECONDS + n / 20
        cpu_at_first = None  # CPU the processes had used when the first message was done: start-up excluded
        while (done := (plain_done()[0] if variant == "plain" else this_run.count())) < n:
            if done and cpu_at_first is None:
                cpu_at_first, done_at_first = sum(cpu_seconds(process.pid) for process in processes), done
            if time.monotonic() > deadline or any(process.poll() is not None for process in processes):
                consumers_stop(processes)
                codes = [process.returncode for process in processes]
                raise RuntimeError(f"{variant}: {done} of {n} done, exit codes {codes}; logs in {log_dir}")
            time.sleep(0.2)
        wall_seconds = time.perf_counter() - started
        peak_rss_kib = [memory_kib(process.pid, "VmHWM") for process in processes]
        rss_kib = [memory_kib(process.pid, "VmRSS") for process in processes]
        cpu = sum(cpu_seconds(process.pid) for process in processes)
        consumers_stop(processes)
        if variant == "plain":
            times = sorted(plain_done()[1])
            busy_seconds, outcomes, per_worker = times[-1] - times[0], {"applied": len(times)}, []
        else:
            span = this_run.aggregate(first=Min("created_at"), last=Max("created_at"))
            busy_seconds = (span["last"] - span["first"]).total_seconds()
            outcomes = dict(Counter(this_run.values_list("outcome", flat=True)))
            per_worker = sorted(Counter(this_run.values_list("worker", flat=True)).values())
        busy_cpu_ms = (cpu - cpu_at_first) * 1000 / (n - done_at_first) if cpu_at_first is not None else float("nan")
        return {"variant": variant, "processes": count, "messages": n, "msg_s": (n - 1) / busy_seconds,
                "busy_cpu_ms_per_message": busy_cpu_ms,
                "wall_seconds": wall_seconds, "outcomes": outcomes, "per_worker": per_worker,
                "peak_rss_kib": peak_rss_kib, "rss_kib": rss_kib,
                # Start-up included (about a second per process): an upper bound on the cost per message.
                "cpu_ms_per_message": cpu * 1000 / n}

    def latency(variant: str, orders: int) -> dict:
        """Purchases recorded in the shop's outbox at 10/s (published after commit, as the shop does);
        one consumer; the time from each purchase's commit until its shipment is visible in shipping."""
        from django.db import transaction

        from messaging.outbox import outbox_event_record
        from shipping.models import Shipment

        ConsumerState.objects.using("shipping").all().delete()
        processes = consumers_start(1, log_dir, variant, env)
        deadline = time.monotonic() + 60
        while not ConsumerState.objects.using("shipping").filter(last_heartbeat_at__isnull=False).exists():
            assert time.monotonic() < deadline and processes[0].poll() is None
            time.sleep(0.1)
        time.sleep(1.0)
        committed, seen = {}, {}
        first_order = next_order_id[0]
        next_order_id[0] += orders
        started = time.monotonic()
        for index in range(orders):
            order_id = first_order + index
            while time.monotonic() < started + index / 10:
                _poll_shipments(Shipment, first_order, seen)
                time.sleep(0.002)
            with transaction.atomic(using="default"):
                outbox_event_record(purchase_event(order_id), using="default")
            committed[order_id] = time.monotonic()  # after commit, so after the after-commit publish
        deadline = time.monotonic() + 30
        while len(seen) < orders and time.monotonic() < deadline:
            _poll_shipments(Shipment, first_order, seen)
            time.sleep(0.002)
        consumers_stop(processes)
        delays = sorted((seen[order] - committed[order]) * 1000 for order in committed if order in seen)
        return {"variant": variant, "orders": orders, "seen": len(delays),
                "p50_ms": delays[len(delays) // 2] if delays else None,
                "p90_ms": delays[int(len(delays) * 0.9)] if delays else None}

    results, latencies, memory = [], [], []
    for count in process_counts:
        for variant in variants:
            results.append(run(variant, count, messages))
    if latency_orders:
        for variant in variants:
            if variant != "plain":
                latencies.append(latency(variant, latency_orders))
    if memory_messages:
        memory.append(run("new", 1, memory_messages))
    shutil.rmtree(log_dir, ignore_errors=True)  # kept only when a run fails, for its logs
    return {"runs": results, "latency": latencies, "memory": memory}


def _poll_shipments(Shipment, first_order: int, seen: dict) -> None:
    now = time.monotonic()
    for order_id in Shipment.objects.using("shipping").filter(order_id__gte=first_order).exclude(
            order_id__in=list(seen)).values_list("order_id", flat=True):
        seen[order_id] = now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--sqs-messages", type=int, default=300, help="fewer on the (slow) SQS emulator")
    parser.add_argument("--processes", default="1,2", help="comma-separated process counts, e.g. 1,2")
    parser.add_argument("--backend", choices=[*BACKENDS, "all"], default="all")
    parser.add_argument("--variants", default="plain,new", help=f"comma-separated, of {','.join(VARIANTS)}")
    parser.add_argument("--compare-root", default="",
                        help="a checkout of the code to measure as 'today' (e.g. a git worktree of the base commit)")
    parser.add_argument("--latency-orders", type=int, default=0,
                        help="also measure purchase-to-shipment latency with this many orders at 10/s")
    parser.add_argument("--memory-messages", type=int, default=0,
                        help="also run one 'new' consumer over this many messages and report its peak RSS")
    parser.add_argument("--skip-checks", action="store_true",
                        help="start the consumers with --skip-checks (when a half-edited tree fails Django's checks)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.skip_checks:
        os.environ["BENCH_CONSUME_ARGS"] = "--skip-checks"
    if options.compare_root:
        os.environ["BENCH_COMPARE_ROOT"] = str(Path(options.compare_root).resolve())
    process_counts = [int(count) for count in options.processes.split(",")]
    variants = options.variants.split(",")
    if options.child:
        import json

        print(json.dumps(child(options.messages, process_counts, variants, options.latency_orders,
                               options.memory_messages)))
        return

    print(f"consumer throughput, {time.strftime('%Y-%m-%d %H:%M')}: purchase events on shipping.events; "
          f"load average {' '.join(f'{load:.2f}' for load in os.getloadavg())} at start")
    print(f"{'backend':<19}{'variant':<8}{'procs':>6}{'msgs':>7}{'msg/s':>8}{'x plain':>8}{'CPU ms/msg':>11}{'busy':>6}"
          f"{'RSS MiB':>9}{'peak MiB':>9}   per process / outcomes")
    for name in BACKENDS if options.backend == "all" else (options.backend,):
        messages = options.sqs_messages if name.startswith("sqs") else options.messages
        with backend(name) as env:
            result = run_child(__file__, env, "--messages", str(messages), "--processes", options.processes,
                               "--variants", options.variants, "--latency-orders", str(options.latency_orders),
                               "--memory-messages", str(options.memory_messages), timeout=3600)
        plain = {run["processes"]: run["msg_s"] for run in result["runs"] if run["variant"] == "plain"}
        for run in result["runs"] + result["memory"]:
            ratio = run["msg_s"] / plain[run["processes"]] if run["processes"] in plain else float("nan")
            peaks = "/".join(f"{kib / 1024:.0f}" for kib in run["peak_rss_kib"])
            rss = "/".join(f"{kib / 1024:.0f}" for kib in run["rss_kib"])
            print(f"{name:<19}{run['variant']:<8}{run['processes']:>6}{run['messages']:>7}{run['msg_s']:>8,.0f}"
                  f"{ratio:>8.2f}{run['cpu_ms_per_message']:>11.2f}{run['busy_cpu_ms_per_message']:>6.2f}{rss:>9}{peaks:>9}   "
                  f"{'/'.join(map(str, run['per_worker']))} {run['outcomes']}")
        for run in result["latency"]:
            print(f"{name:<19}{run['variant']:<8} latency at 10 orders/s: p50 {run['p50_ms']:.0f} ms, "
                  f"p90 {run['p90_ms']:.0f} ms ({run['seen']} of {run['orders']} shipments seen)")
    print(f"load average {' '.join(f'{load:.2f}' for load in os.getloadavg())} at the end")


if __name__ == "__main__":
    main()
