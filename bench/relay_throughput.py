"""How fast the outbox relay publishes: N outbox rows through `outbox_relay_publish_pending`.

    .venv/bin/python bench/relay_throughput.py                  # both backends, 2,000 rows, 5 runs
    .venv/bin/python bench/relay_throughput.py --backend embedded --messages 500 --runs 1

For each backend (RabbitMQ + PostgreSQL in a fresh vhost and fresh databases; the embedded SQLite
broker and SQLite files in a temporary folder) and each run:
1. record N purchase events in the shop's outbox with `outbox_event_record`, in one transaction;
2. publish them as the relay's sweep does: `outbox_relay_publish_pending` in batches of
   OUTBOX_RELAY_BATCH_SIZE (200) until none is left, on a connection with publisher confirms
   (`broker_connection()`), and time it;
3. for comparison in the same run, publish the same bodies with plain kombu on a connection with
   confirms (no database), as BASELINES.md's "kombu publish, waiting for each publisher confirm".
Each row routes to two queues (shipping.events, loyalty.events); they are purged between runs.
Prints the median msg/s of each and their ratio.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BACKENDS, backend, django_setup, median, purchase_event, run_child  # noqa: E402


AFTER_COMMIT_BATCH = 50  # events one consumer batch (or one busy request) leaves for the after-commit publish


def child(messages: int, runs: int) -> dict:
    django_setup()
    from django.conf import settings
    from django.db import transaction

    from messaging.brokers import OutgoingMessage
    from messaging.events import CONTENT_TYPE, EXCHANGE_NAME
    from messaging.models import OutboxMessage
    from messaging.outbox import outbox_event_record, outbox_publish_after_commit, outbox_relay_publish_pending
    from messaging.topology import SUBSCRIPTIONS, event_bus_connect

    url = settings.BROKER_URL
    kombu = url.startswith(("amqp", "eventshop-sqlite", "memory"))

    def purge_queues() -> None:
        if not kombu:
            return  # ActiveMQ / SQS: each run's fresh namespace keeps them apart; they are left to the broker
        from kombu import Connection

        with Connection(url) as connection:
            for subscription in SUBSCRIPTIONS.values():
                connection.default_channel.queue_purge(subscription.queue_name)

    def plain_publish(rows) -> float:
        """Publish each body and wait for its confirm before the next: bare kombu with publisher
        confirms on RabbitMQ (and the embedded file broker, whose publish returns after its commit);
        one message per `publish` call of the port on ActiveMQ (a receipt each) and SQS (one SNS call each)."""
        if kombu:
            from kombu import Connection, Exchange, Producer

            options = {"confirm_publish": True} if url.startswith("amqp") else {}
            with Connection(url, transport_options=options) as connection:
                producer = Producer(connection.default_channel, exchange=Exchange(EXCHANGE_NAME, type="topic"),
                                    auto_declare=False)
                started = time.perf_counter()
                for row in rows:
                    producer.publish(row.body, routing_key=row.routing_key, content_type=CONTENT_TYPE,
                                     content_encoding="utf-8", delivery_mode=2, retry=False)
                return len(rows) / (time.perf_counter() - started)
        with event_bus_connect() as bus:
            started = time.perf_counter()
            for row in rows:
                result = bus.publish([OutgoingMessage(message_id=str(row.event_id), routing_key=row.routing_key,
                                                      body=row.body.encode(), content_type=CONTENT_TYPE)])
                assert result.error is None, result.error
            return len(rows) / (time.perf_counter() - started)

    relay_rates, after_commit_rates, plain_rates = [], [], []
    body_bytes = 0
    for run in range(runs):
        with transaction.atomic(using="default"):
            for index in range(messages):
                outbox_event_record(purchase_event(run * messages + index + 1), using="default")
        rows = list(OutboxMessage.objects.using("default").filter(published_at__isnull=True).order_by("id"))
        assert len(rows) == messages
        body_bytes = sum(len(row.body.encode()) for row in rows) / len(rows)

        bus = event_bus_connect()
        published = 0
        started = time.perf_counter()
        while batch := outbox_relay_publish_pending(using="default", bus=bus, grace_seconds=0,
                                                    limit=settings.OUTBOX_RELAY_BATCH_SIZE):
            published += batch
        relay_rates.append(messages / (time.perf_counter() - started))
        bus.close()
        assert published == messages, f"published {published} of {messages}"
        purge_queues()

        # The same rows again, as writers' after-commit publishes of AFTER_COMMIT_BATCH events each.
        OutboxMessage.objects.using("default").filter(pk__in=[row.pk for row in rows]).update(published_at=None)
        outbox_publish_after_commit(using="default", message_ids=[])  # connects (not timed)
        started = time.perf_counter()
        for first in range(0, len(rows), AFTER_COMMIT_BATCH):
            outbox_publish_after_commit(using="default",
                                        message_ids=[row.pk for row in rows[first:first + AFTER_COMMIT_BATCH]])
        after_commit_rates.append(messages / (time.perf_counter() - started))
        left = OutboxMessage.objects.using("default").filter(published_at__isnull=True).count()
        assert left == 0, f"{left} rows left unpublished after commit"
        purge_queues()

        plain_rates.append(plain_publish(rows))
        purge_queues()
    return {"relay_msg_s": relay_rates, "after_commit_msg_s": after_commit_rates, "plain_msg_s": plain_rates,
            "body_bytes": body_bytes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--sqs-messages", type=int, default=200, help="fewer on the (slow) SQS emulator")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backend", choices=[*BACKENDS, "all"], default="all")
    parser.add_argument("--compare-root", default="",
                        help="also measure the code in this checkout (e.g. a git worktree of the base commit) as 'today'")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        import json

        print(json.dumps(child(options.messages, options.runs)))
        return

    print(f"relay throughput, {time.strftime('%Y-%m-%d %H:%M')}: {options.runs} run(s) per backend; median, with "
          f"the range of the runs; load average {' '.join(f'{load:.2f}' for load in os.getloadavg())} at start")
    print(f"{'backend':<19}{'code':<7}{'msgs':>6}{'relay msg/s':>20}{'after-commit msg/s':>21}{'plain msg/s':>20}"
          f"{'relay/plain':>12}{'a-c/plain':>10}")
    roots = [("new", "")] + ([("today", str(Path(options.compare_root).resolve()))] if options.compare_root else [])
    for name in BACKENDS if options.backend == "all" else (options.backend,):
        messages = options.sqs_messages if name.startswith("sqs") else options.messages
        for code, root in roots:
            with backend(name) as env:
                # The rows must wait for the relay: no publish from the process that records them.
                result = run_child(__file__, env, "--messages", str(messages), "--runs", str(options.runs),
                                   extra_env={"OUTBOX_PUBLISH_ON_COMMIT": "false",
                                              **({"EVENTSHOP_CODE_ROOT": root} if root else {})}, timeout=1800)
            relay, after, plain = result["relay_msg_s"], result["after_commit_msg_s"], result["plain_msg_s"]
            # Each run's figures are measured back to back: their ratio is the stable number.
            ratio = median([r / w for r, w in zip(relay, plain)])
            after_ratio = median([r / w for r, w in zip(after, plain)])
            print(f"{name:<19}{code:<7}{messages:>6}{_spread(relay):>20}{_spread(after):>21}{_spread(plain):>20}"
                  f"{ratio:>12.2f}{after_ratio:>10.2f}")
    print(f"load average {' '.join(f'{load:.2f}' for load in os.getloadavg())} at the end")


def _spread(rates: list[float]) -> str:
    return f"{median(rates):,.0f} ({min(rates):,.0f}-{max(rates):,.0f})"


if __name__ == "__main__":
    main()
