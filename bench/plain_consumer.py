"""The plain idempotent consumer the Eventshop consumer is compared with (not Eventshop code).

    python bench/plain_consumer.py     # with BROKER_URL and SHIPPING_DATABASE_URL set, as the bench sets them

Consumes `shipping.events` and, for each message, in one database transaction: insert the event id
into an inbox (a unique key: a redelivery is skipped), upsert one counter row, commit; then ack that
message. This is BASELINES.md's "idempotent consumer: kombu + one PostgreSQL transaction per message,
ack after commit". On RabbitMQ and the embedded broker it is bare kombu (prefetch 100); on ActiveMQ
and SQS, where kombu has no transport, it reads through the port's SubscriptionReader (one fetch of
up to 10, then an ack per message), which is a thin layer over stomp.py / boto3.
Runs until SIGTERM.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PREFETCH = 100
stop = False


def _stop(signum, frame):
    global stop
    stop = True


def database():
    """A DB-API connection to the shipping database and its placeholder style, with the two tables made."""
    url = os.environ["SHIPPING_DATABASE_URL"]
    if url.startswith("sqlite"):
        connection = sqlite3.connect(urlsplit(url).path, timeout=30, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        for statement in (PLAIN_TABLES_SQLITE):
            connection.execute(statement)
        return connection, "?"
    import psycopg

    connection = psycopg.connect(url, autocommit=True)
    for statement in PLAIN_TABLES_POSTGRES:
        connection.execute(statement)
    return connection, "%s"


PLAIN_TABLES_POSTGRES = (
    "CREATE TABLE IF NOT EXISTS bench_plain_inbox (event_id uuid PRIMARY KEY, processed_at double precision NOT NULL)",
    "CREATE TABLE IF NOT EXISTS bench_plain_counter (customer_id integer PRIMARY KEY, events integer NOT NULL)",
)
PLAIN_TABLES_SQLITE = (
    "CREATE TABLE IF NOT EXISTS bench_plain_inbox (event_id text PRIMARY KEY, processed_at real NOT NULL)",
    "CREATE TABLE IF NOT EXISTS bench_plain_counter (customer_id integer PRIMARY KEY, events integer NOT NULL)",
)


def apply(connection, mark: str, body: bytes) -> None:
    event = json.loads(body)
    begin = "BEGIN IMMEDIATE" if mark == "?" else "BEGIN"
    connection.execute(begin)
    try:
        inserted = connection.execute(
            f"INSERT INTO bench_plain_inbox (event_id, processed_at) VALUES ({mark}, {mark}) "
            "ON CONFLICT DO NOTHING RETURNING event_id", (event["id"], time.time())).fetchall()
        if inserted:
            connection.execute(
                f"INSERT INTO bench_plain_counter (customer_id, events) VALUES ({mark}, 1) "
                "ON CONFLICT (customer_id) DO UPDATE SET events = bench_plain_counter.events + 1",
                (event["data"]["customer_id"],))
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


def consume_with_kombu(url: str, connection, mark: str) -> None:
    from kombu import Connection, Consumer, Queue

    from messaging.transport import register_transport_alias

    register_transport_alias()
    with Connection(url) as broker:
        def on_message(message):
            apply(connection, mark, message.body if isinstance(message.body, bytes) else message.body.encode())
            message.ack()

        queue = Queue("shipping.events", no_declare=True)
        with Consumer(broker.channel(), queues=[queue], on_message=on_message, prefetch_count=PREFETCH):
            while not stop:
                try:
                    broker.drain_events(timeout=0.5)
                except socket.timeout:
                    pass


def consume_with_port(url: str, connection, mark: str) -> None:
    import django

    django.setup()
    from messaging.brokers import event_bus
    from messaging.topology import SUBSCRIPTIONS

    with event_bus(url) as bus:
        reader = bus.subscribe(SUBSCRIPTIONS["shipping"], prefetch=10)
        while not stop:
            for delivery in reader.fetch(10, 0.5):
                apply(connection, mark, delivery.body)
                reader.ack([delivery])
        reader.close()


def main() -> None:
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    connection, mark = database()
    url = os.environ["BROKER_URL"]
    if url.startswith(("amqp", "eventshop-sqlite")):
        consume_with_kombu(url, connection, mark)
    else:
        consume_with_port(url, connection, mark)


if __name__ == "__main__":
    main()
