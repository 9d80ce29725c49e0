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


def child(messages: int, runs: int) -> dict:
    django_setup()
    from django.conf import settings
    from django.db import transaction
    from kombu import Producer

    from messaging.broker import broker_connection
    from messaging.events import CONTENT_TYPE
    from messaging.models import OutboxMessage
    from messaging.outbox import OutboxPublisher, outbox_event_record, outbox_relay_publish_pending
    from messaging.topology import EVENTS_EXCHANGE, SUBSCRIPTIONS

    def purge_queues(connection) -> None:
        for subscription in SUBSCRIPTIONS.values():
            connection.default_channel.queue_purge(subscription.queue_name)

    relay_rates, raw_rates = [], []
    body_bytes = 0
    for run in range(runs):
        with transaction.atomic(using="default"):
            for index in range(messages):
                outbox_event_record(purchase_event(run * messages + index + 1), using="default")
        rows = list(OutboxMessage.objects.using("default").filter(published_at__isnull=True).order_by("id"))
        assert len(rows) == messages
        body_bytes = sum(len(row.body.encode()) for row in rows) / len(rows)

        publisher = OutboxPublisher(broker_connection(connect_timeout=5))
        published = 0
        started = time.perf_counter()
        while batch := outbox_relay_publish_pending(using="default", publisher=publisher, grace_seconds=0,
                                                    limit=settings.OUTBOX_RELAY_BATCH_SIZE):
            published += batch
        relay_rates.append(messages / (time.perf_counter() - started))
        assert published == messages, f"published {published} of {messages}"
        purge_queues(publisher.connection)
        publisher.close()

        with broker_connection(connect_timeout=5) as connection:
            producer = Producer(connection.default_channel, exchange=EVENTS_EXCHANGE)
            started = time.perf_counter()
            for row in rows:
                producer.publish(row.body, routing_key=row.routing_key, content_type=CONTENT_TYPE,
                                 content_encoding="utf-8", delivery_mode=2, retry=False)
            raw_rates.append(messages / (time.perf_counter() - started))
            purge_queues(connection)
    return {"relay_msg_s": relay_rates, "raw_msg_s": raw_rates, "body_bytes": body_bytes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="both")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        import json

        print(json.dumps(child(options.messages, options.runs)))
        return

    print(f"relay throughput: {options.messages} outbox rows per run, {options.runs} run(s); "
          f"median, with the range of the runs; load average {os.getloadavg()[0]:.1f} at start")
    print(f"{'backend':<20}{'relay msg/s':>22}{'raw kombu msg/s':>22}{'relay / raw':>13}{'body bytes':>12}")
    for name in BACKENDS if options.backend == "both" else (options.backend,):
        with backend(name) as env:
            # The rows must wait for the relay: no publish from the process that records them.
            result = run_child(__file__, env, "--messages", str(options.messages), "--runs", str(options.runs),
                               extra_env={"OUTBOX_PUBLISH_ON_COMMIT": "false"})
        relay, raw = result["relay_msg_s"], result["raw_msg_s"]
        # Each run's relay and raw figures are measured back to back: their ratio is the stable number.
        ratio = median([r / w for r, w in zip(relay, raw)])
        print(f"{name:<20}{_spread(relay):>22}{_spread(raw):>22}{ratio:>13.2f}{result['body_bytes']:>12.0f}")


def _spread(rates: list[float]) -> str:
    return f"{median(rates):,.0f} ({min(rates):,.0f}-{max(rates):,.0f})"

if __name__ == "__main__":
    main()
