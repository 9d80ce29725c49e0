"""The comparison's measurements, each on a running `Stack` and read back from the services' databases.

Every figure comes from this run: times and outcomes are what the real processes recorded
(`shop_order`, `shipping_shipment`, `messaging_deliveryattempt`, `messaging_inboxmessage`), or
what the publishing child process timed.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timezone

from messaging.brokers import OutgoingMessage, event_bus
from messaging.events import CONTENT_TYPE, Envelope
from messaging.topology import SUBSCRIPTIONS
from tests.integration.stack import PROJECT_ROOT, wait_until
from tests.messaging.builders import cancellation, purchase

from bench.comparison import setups

SHIPPING_TERMINAL = ("applied", "duplicate", "stale", "early", "dead")


def _as_datetime(value) -> datetime:
    """Aware, in UTC: SQLite hands Django's times back as naive UTC strings, PostgreSQL as aware datetimes."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-share * len(ordered) // 1))))
    return ordered[rank - 1]


def _placeholders(count: int) -> str:
    return ", ".join(["?"] * count)


def _top_up_stock(stack) -> None:
    """Enough stock that no order of the run is refused (the seed has a few hundred items)."""
    stack.backend.sql("default", "UPDATE shop_product SET stock = 1000000")


def _timeout(messages: int, per_second: float = 5.0) -> float:
    return 90 + messages / per_second


# --- publishing ---------------------------------------------------------------------------------


def publish_throughput(stack, messages: int) -> dict:
    """The relay's path (outbox rows through `outbox_relay_publish_pending`, which publishes with
    confirmation through the bus and marks what was confirmed), beside one `bus.publish` per message
    (each waiting for its confirmation, no database) of the same bodies, in a child process."""
    env = {**stack.env, "OUTBOX_PUBLISH_ON_COMMIT": "false", "LOG_LEVEL": "WARNING"}
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / "bench" / "brokers.py"), "--child", "publish",
                             "--messages", str(messages)], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                            timeout=_timeout(messages, 2))
    if result.returncode != 0:
        raise RuntimeError(f"the publishing child failed:\n{result.stderr[-2000:]}")
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    figures["relay_to_plain"] = round(figures["relay_msg_s"] / figures["plain_msg_s"], 2)
    return figures


def publish_child(messages: int) -> dict:
    """Runs in the child, Django configured for the broker: record, publish through the relay, then plainly."""
    from django.conf import settings
    from django.db import transaction

    from bench.common import purchase_event
    from messaging.models import OutboxMessage
    from messaging.outbox import outbox_event_record, outbox_outgoing, outbox_relay_publish_pending
    from messaging.topology import event_bus_connect

    base = 800_000_000 + uuid.uuid4().int % 100_000_000
    with transaction.atomic(using="default"):
        for index in range(messages):
            outbox_event_record(purchase_event(base + index), using="default")
    rows = list(OutboxMessage.objects.using("default").filter(published_at__isnull=True).order_by("id"))
    with event_bus_connect() as bus:
        published = 0
        started = time.perf_counter()
        while batch := outbox_relay_publish_pending(using="default", bus=bus, grace_seconds=0,
                                                    limit=settings.OUTBOX_RELAY_BATCH_SIZE):
            published += batch
        relay_seconds = time.perf_counter() - started
        if published != len(rows):
            raise RuntimeError(f"the relay published {published} of {len(rows)} rows")
        outgoing = [outbox_outgoing(row) for row in rows]
        started = time.perf_counter()
        for message in outgoing:
            result = bus.publish([OutgoingMessage(message_id=str(uuid.uuid4()), routing_key=message.routing_key,
                                                  body=message.body, content_type=message.content_type,
                                                  headers=message.headers, ordering_key=message.ordering_key)])
            if result.error is not None:
                raise result.error
        plain_seconds = time.perf_counter() - started
    return {"messages": len(rows), "relay_msg_s": round(len(rows) / relay_seconds, 1),
            "plain_msg_s": round(len(rows) / plain_seconds, 1),
            "relay_batch": settings.OUTBOX_RELAY_BATCH_SIZE,
            "body_bytes": round(sum(len(row.body.encode()) for row in rows) / len(rows))}


# --- purchase to shipment --------------------------------------------------------------------------


class OrderPacer:
    """Places orders through the API at a fixed rate, in a thread; keeps each order's id."""

    def __init__(self, stack, *, rate: float, count: int):
        self.stack, self.rate, self.count = stack, rate, count
        self.order_ids: list[int] = []
        self.failures: list[str] = []
        self.skus = [product["sku"] for product in stack.products()]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.seconds = 0.0

    def _run(self) -> None:
        started = time.monotonic()
        for index in range(self.count):
            delay = started + index / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            try:
                order = self.stack.place_order([{"sku": self.skus[index % len(self.skus)], "quantity": 1}])
                self.order_ids.append(order["id"])
            except Exception as error:  # noqa: BLE001 - the run counts refused orders, it does not stop
                self.failures.append(f"{type(error).__name__}: {error}"[:300])
        self.seconds = time.monotonic() - started

    def start(self) -> OrderPacer:
        self.thread.start()
        return self

    def join(self) -> OrderPacer:
        self.thread.join()
        return self


def _shipments(stack, order_ids: list[int]) -> dict[int, datetime]:
    if not order_ids:
        return {}
    rows = stack.backend.sql("shipping", f"SELECT order_id, created_at FROM shipping_shipment WHERE order_id IN "
                             f"({_placeholders(len(order_ids))})", tuple(order_ids))
    return {int(order_id): _as_datetime(created) for order_id, created in rows}


def _orders(stack, order_ids: list[int]) -> dict[int, datetime]:
    rows = stack.backend.sql("default", f"SELECT id, created_at FROM shop_order WHERE id IN "
                             f"({_placeholders(len(order_ids))})", tuple(order_ids))
    return {int(order_id): _as_datetime(created) for order_id, created in rows}


def purchase_to_shipment_latency(stack, *, orders: int, rate: float) -> dict:
    """Orders placed through the API at `rate` per second, web + relay + shipping running; each
    order's latency is its shipment's `created_at` minus the order's `created_at`."""
    _top_up_stock(stack)
    for name in ("web", "relay", "shipping"):
        if name not in stack.processes:
            stack.start(name)
    pacer = OrderPacer(stack, rate=rate, count=orders).start().join()
    ids = pacer.order_ids
    try:
        wait_until(lambda: len(_shipments(stack, ids)) == len(ids), timeout=_timeout(len(ids), 2), interval=0.5,
                   what="every order's shipment")
    except AssertionError:
        pass  # the missing ones are counted below
    shipments, placed = _shipments(stack, ids), _orders(stack, ids)
    latencies = [(shipments[i] - placed[i]).total_seconds() * 1000 for i in ids if i in shipments and i in placed]
    if not latencies:
        raise RuntimeError(f"no order reached shipping ({len(pacer.failures)} refused: {pacer.failures[:1]})")
    return {"orders": len(ids), "refused": len(pacer.failures), "rate_per_s": rate,
            "placing_seconds": round(pacer.seconds, 1),
            "p50_ms": round(_percentile(latencies, 0.50), 1), "p95_ms": round(_percentile(latencies, 0.95), 1),
            "p99_ms": round(_percentile(latencies, 0.99), 1), "max_ms": round(max(latencies), 1),
            "without_shipment": len(ids) - len(latencies)}


# --- events put straight on the topic ------------------------------------------------------------------


def _order_range(count: int) -> list[int]:
    first = 100_000_000 + uuid.uuid4().int % 800_000_000
    return list(range(first, first + count))


def _publish_envelopes(url: str, envelopes: list[Envelope]) -> None:
    """Publish as the relay does (ordering key = the order), with the topology declared first, so
    every subscriber's queue collects them before its consumer starts."""
    with event_bus(url) as bus:
        bus.declare(SUBSCRIPTIONS.values())
        for start in range(0, len(envelopes), 50):
            batch = envelopes[start:start + 50]
            result = bus.publish([OutgoingMessage(message_id=str(e.id), routing_key=e.event.routing_key(),
                                                  body=e.to_json().encode(), content_type=CONTENT_TYPE,
                                                  headers={"ce-type": e.type}, ordering_key=str(e.event.order_id))
                                  for e in batch])
            if result.error is not None or len(result.confirmed) != len(batch):
                raise RuntimeError(f"the broker confirmed {len(result.confirmed)} of {len(batch)}: {result.error}")


def _attempts(stack, order_ids: list[int]) -> list[tuple]:
    """(subject, event_id, attempt, outcome, worker, created_at) of shipping's attempts for these orders."""
    subjects = [str(order_id) for order_id in order_ids]
    rows = []
    for start in range(0, len(subjects), 500):
        chunk = subjects[start:start + 500]
        rows += stack.backend.sql("shipping", "SELECT subject, event_id, attempt, outcome, worker, created_at "
                                  "FROM messaging_deliveryattempt WHERE consumer = 'shipping' AND subject IN "
                                  f"({_placeholders(len(chunk))}) ORDER BY id", tuple(chunk))
    return rows


def _settled_events(rows) -> set[str]:
    return {str(row[1]) for row in rows if row[3] in SHIPPING_TERMINAL}


def _start_consumers(stack, processes: int, tag: str, **env) -> list[str]:
    names = [f"shipping#{tag}{index}" for index in range(processes)]
    for name in names:
        stack.start(name, **env)
    return names


def _stop(stack, names) -> None:
    for name in names:
        if name in stack.processes:
            stack.stop(name)


def consumer_throughput(stack, *, messages: int, processes: int) -> dict:
    """N purchases on the shipping queue, then `processes` competing `consume shipping`. The rate is
    taken over the window in which every process was at work (from the last process's first
    attempt to the last attempt), so process start-up does not count; where one process drained
    the queue before another started, over all attempts, and `all_processes_took_part` says so."""
    _stop(stack, [name for name in list(stack.processes) if name.startswith("shipping")])
    order_ids = _order_range(messages)
    _publish_envelopes(stack.backend.broker_url, [Envelope(event=purchase(order_id=i), sequence=1) for i in order_ids])
    names = _start_consumers(stack, processes, f"c{processes}-")
    try:
        wait_until(lambda: len(_settled_events(_attempts(stack, order_ids))) >= messages,
                   timeout=_timeout(messages, 3), interval=0.5, what=f"{messages} purchases handled")
    finally:
        _stop(stack, names)
    rows = [row for row in _attempts(stack, order_ids) if row[3] in SHIPPING_TERMINAL]
    first_by_worker: dict[str, datetime] = {}
    workers: dict[str, int] = {}
    for row in rows:
        workers[row[4]] = workers.get(row[4], 0) + 1
        first_by_worker.setdefault(row[4], _as_datetime(row[5]))
    times = sorted(_as_datetime(row[5]) for row in rows)
    all_took_part = len(workers) == processes
    start = max(first_by_worker.values()) if all_took_part else times[0]
    in_window = [moment for moment in times if moment >= start]
    if len(in_window) < max(2, len(times) // 10):  # too short a window to say anything: use every attempt
        start, in_window = times[0], times
    span = (in_window[-1] - start).total_seconds()
    return {"messages": messages, "processes": processes,
            "msg_s": round((len(in_window) - 1) / span, 1) if span else None, "window_seconds": round(span, 2),
            "attempts_in_window": len(in_window), "per_process": sorted(workers.values(), reverse=True),
            "all_processes_took_part": all_took_part}


def _wait_for_consumers(stack, since: datetime, processes: int) -> None:
    """Until shipping's heartbeat is newer than `since`, then a moment per process for the rest to subscribe."""
    wait_until(lambda: any(_as_datetime(row[0]) >= since for row in stack.backend.sql(
        "shipping", "SELECT last_heartbeat_at FROM messaging_consumerstate WHERE consumer = 'shipping' "
        "AND last_heartbeat_at IS NOT NULL")), timeout=90, interval=0.3, what="shipping's heartbeat")
    time.sleep(2.0 * processes)


def ordering(stack, *, orders: int, processes: int, url: str | None = None) -> dict:
    """Each order's purchase (sequence 1) then its cancellation (sequence 2), published in that order
    with the order as ordering key; `processes` consumers take them. An order counts as seen out of
    order when shipping's inbox recorded one of its events `early` or `stale`."""
    _stop(stack, [name for name in list(stack.processes) if name.startswith("shipping")])
    url = url or stack.backend.broker_url
    order_ids = _order_range(orders)
    envelopes = []
    for order_id in order_ids:
        envelopes += [Envelope(event=purchase(order_id=order_id), sequence=1),
                      Envelope(event=cancellation(order_id=order_id), sequence=2)]
    # The consumers first, so that they compete from the first event on.
    since = datetime.now().astimezone()
    names = _start_consumers(stack, processes, f"o{processes}{'x' if url != stack.backend.broker_url else ''}-",
                             BROKER_URL=url)
    _wait_for_consumers(stack, since, processes)
    _publish_envelopes(url, envelopes)
    try:
        wait_until(lambda: len(_settled_events(_attempts(stack, order_ids))) >= 2 * orders,
                   timeout=_timeout(2 * orders, 3), interval=0.5, what=f"{2 * orders} events handled")
    finally:
        _stop(stack, names)
    subjects = [str(order_id) for order_id in order_ids]
    rows = stack.backend.sql("shipping", "SELECT DISTINCT subject FROM messaging_inboxmessage WHERE consumer = 'shipping' "
                             f"AND outcome IN ('early', 'stale') AND subject IN ({_placeholders(len(subjects))})",
                             tuple(subjects))
    workers = {row[4] for row in _attempts(stack, order_ids)}
    return {"orders": orders, "processes": processes, "out_of_order": len(rows),
            "share": round(len(rows) / orders, 4), "processes_that_handled_events": len(workers)}


def consumer_kill(stack, *, messages: int) -> dict:
    """N purchases; one consumer SIGKILLed once a third are handled, a new one started: how many
    came again (attempt > 1) and how many of those the inbox skipped as duplicates."""
    _stop(stack, [name for name in list(stack.processes) if name.startswith("shipping")])
    order_ids = _order_range(messages)
    _publish_envelopes(stack.backend.broker_url, [Envelope(event=purchase(order_id=i), sequence=1) for i in order_ids])
    [first] = _start_consumers(stack, 1, "k")
    wait_until(lambda: len(_settled_events(_attempts(stack, order_ids))) >= max(1, messages // 3),
               timeout=_timeout(messages, 3), interval=0.1, what="a third of the purchases")
    stack.stop(first, kill=True)
    handled_at_kill = len(_settled_events(_attempts(stack, order_ids)))
    killed_at = time.monotonic()
    [second] = _start_consumers(stack, 1, "k2-")
    try:
        wait_until(lambda: len(_settled_events(_attempts(stack, order_ids))) >= messages,
                   timeout=_timeout(messages, 3) + 60, interval=0.5, what="every purchase after the kill")
        recovered_seconds = time.monotonic() - killed_at
    finally:
        _stop(stack, [second])
    rows = _attempts(stack, order_ids)
    redelivered = {str(row[1]) for row in rows if row[2] > 1}
    duplicates = sum(1 for row in rows if row[3] == "duplicate")
    applied = {str(row[1]) for row in rows if row[3] == "applied"}
    shipments = len(_shipments(stack, order_ids))
    return {"messages": messages, "handled_before_kill": handled_at_kill, "redelivered": len(redelivered),
            "duplicates_absorbed": duplicates, "applied": len(applied), "shipments": shipments,
            "lost": messages - len(applied), "seconds_to_finish_after_kill": round(recovered_seconds, 1)}


def broker_restart(stack, setup, *, orders: int, rate: float) -> dict:
    """Orders placed at `rate` while the broker is stopped and started again a third of the way in:
    orders that never got a shipment (lost), duplicates the inbox skipped, seconds to recover."""
    plan, why = setups.restart_plan(setup.broker)
    if plan != "restart":
        return {"status": "not measurable", "reason": why}
    _top_up_stock(stack)
    for name in ("web", "relay", "shipping"):
        if name not in stack.processes:
            stack.start(name)
    host, port = setups.BROKER_PORTS[setup.broker]
    base = setups._activemq_base() if setup.broker == "activemq" else None
    pacer = OrderPacer(stack, rate=rate, count=orders).start()
    time.sleep(orders / rate / 3)
    stopped_at = time.monotonic()
    setups.stop_broker(setup.broker)
    time.sleep(3)
    setups.start_broker(setup.broker, base)
    setups.wait_for_port(host, port, timeout=180)
    back_at = time.monotonic()
    back_wall = datetime.now().astimezone()
    pacer.join()
    ids = pacer.order_ids
    try:
        wait_until(lambda: len(_shipments(stack, ids)) == len(ids), timeout=_timeout(len(ids), 1) + 120, interval=1,
                   what="every order's shipment after the restart")
    except AssertionError:
        pass
    shipments = _shipments(stack, ids)
    after = sorted(created for created in shipments.values() if created >= back_wall)
    duplicates = sum(1 for row in _attempts(stack, ids) if row[3] == "duplicate")
    return {"status": "measured", "orders": len(ids), "refused": len(pacer.failures),
            "lost": len(ids) - len(shipments), "duplicates_absorbed": duplicates,
            "broker_down_seconds": round(back_at - stopped_at, 1),
            "seconds_to_first_shipment_after_restart": round((after[0] - back_wall).total_seconds(), 1) if after else None}

