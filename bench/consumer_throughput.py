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


def consumers_start(count: int, log_dir: Path) -> list[subprocess.Popen]:
    command = [sys.executable, "manage.py", "consume", "shipping", *os.environ.get("BENCH_CONSUME_ARGS", "").split()]
    return [subprocess.Popen(command, cwd=PROJECT_ROOT,
                             stdout=open(log_dir / f"consumer-{index}.log", "ab"), stderr=subprocess.STDOUT)
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


def child(messages: int, process_counts: list[int]) -> dict:
    django_setup()
    from collections import Counter

    from django.db.models import Max, Min
    from kombu import Exchange, Producer

    from messaging.broker import broker_connection
    from messaging.events import CONTENT_TYPE, Envelope
    from messaging.models import ConsumerState, DeliveryAttempt
    from messaging.topology import SUBSCRIPTIONS, topology_declare

    from bench.common import purchase_event

    subscription = SUBSCRIPTIONS["shipping"]
    attempts = DeliveryAttempt.objects.using("shipping").filter(consumer="shipping")
    log_dir = Path(tempfile.mkdtemp(prefix="eventshop-bench-logs-"))
    with broker_connection() as connection:
        topology_declare(connection)

    # The idle footprint: one consumer, nothing to do.
    [idle] = consumers_start(1, log_dir)
    deadline = time.monotonic() + 60
    while not ConsumerState.objects.using("shipping").filter(consumer="shipping", last_heartbeat_at__isnull=False).exists():
        assert time.monotonic() < deadline and idle.poll() is None, (log_dir / "consumer-0.log").read_text()
        time.sleep(0.1)
    time.sleep(1.0)
    idle_rss_kib = memory_kib(idle.pid, "VmRSS")
    consumers_stop([idle])

    results = []
    next_order_id = 1
    for count in process_counts:
        with broker_connection() as connection:  # publisher confirms: every event is on the queue
            producer = Producer(connection.default_channel)
            for _ in range(messages):
                envelope = Envelope(event=purchase_event(next_order_id), sequence=1)
                next_order_id += 1
                producer.publish(envelope.to_json(), exchange=Exchange(""), routing_key=subscription.queue_name,
                                 content_type=CONTENT_TYPE, content_encoding="utf-8", delivery_mode=2,
                                 message_id=str(envelope.id), headers={"ce-type": envelope.type}, retry=False)
        last_id_before = attempts.aggregate(last=Max("id"))["last"] or 0
        this_run = attempts.filter(id__gt=last_id_before)

        started = time.perf_counter()
        processes = consumers_start(count, log_dir)
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while (done := this_run.count()) < messages:
            if time.monotonic() > deadline or any(process.poll() is not None for process in processes):
                consumers_stop(processes)
                codes = [process.returncode for process in processes]
                raise RuntimeError(f"{done} of {messages} applied, exit codes {codes}; logs in {log_dir}")
            time.sleep(0.1)
        wall_seconds = time.perf_counter() - started
        peak_rss_kib = [memory_kib(process.pid, "VmHWM") for process in processes]
        cpu = sum(cpu_seconds(process.pid) for process in processes)
        consumers_stop(processes)

        span = this_run.aggregate(first=Min("created_at"), last=Max("created_at"))
        busy_seconds = (span["last"] - span["first"]).total_seconds()
        results.append({
            "processes": count,
            "msg_s": (messages - 1) / busy_seconds,
            "wall_seconds": wall_seconds,
            "outcomes": dict(Counter(this_run.values_list("outcome", flat=True))),
            "per_worker": sorted(Counter(this_run.values_list("worker", flat=True)).values()),
            "peak_rss_kib": peak_rss_kib,
            # Start-up included (about a second per process): an upper bound on the cost per message.
            "cpu_ms_per_message": cpu * 1000 / messages,
        })
    shutil.rmtree(log_dir, ignore_errors=True)  # kept only when a run fails, for its logs
    return {"idle_rss_kib": idle_rss_kib, "runs": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--processes", default="1,2", help="comma-separated process counts, e.g. 1,2")
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="both")
    parser.add_argument("--skip-checks", action="store_true",
                        help="start the consumers with --skip-checks (when a half-edited tree fails Django's checks)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.skip_checks:
        os.environ["BENCH_CONSUME_ARGS"] = "--skip-checks"
    process_counts = [int(count) for count in options.processes.split(",")]
    if options.child:
        import json

        print(json.dumps(child(options.messages, process_counts)))
        return

    print(f"consumer throughput: {options.messages} purchase events on shipping.events per run; "
          f"load average {os.getloadavg()[0]:.1f} at start")
    print(f"{'backend':<20}{'processes':>10}{'msg/s':>9}{'wall s':>9}{'CPU ms/msg':>12}{'idle RSS MiB':>14}"
          f"{'peak RSS MiB':>14}   messages per process   outcomes")
    for name in BACKENDS if options.backend == "both" else (options.backend,):
        with backend(name) as env:
            result = run_child(__file__, env, "--messages", str(options.messages), "--processes", options.processes)
        for run in result["runs"]:
            peaks = "/".join(f"{kib / 1024:.0f}" for kib in run["peak_rss_kib"])
            print(f"{name:<20}{run['processes']:>10}{run['msg_s']:>9,.0f}{run['wall_seconds']:>9.1f}"
                  f"{run['cpu_ms_per_message']:>12.1f}{result['idle_rss_kib'] / 1024:>14.0f}{peaks:>14}   {'/'.join(map(str, run['per_worker'])):<22} "
                  f"{run['outcomes']}")


if __name__ == "__main__":
    main()
