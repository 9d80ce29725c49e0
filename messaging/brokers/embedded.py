"""The embedded default: the SQLite file broker (messaging/transport/sqlite.py) through kombu, so
the demo runs with no services. It behaves like SQS underneath: a claimed message comes back after
the visibility timeout, and a retry waits invisible until its not-before time.

`memory://` (kombu's in-process broker) takes the same adapter in unit tests.
"""
from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from contextlib import nullcontext

from django.conf import settings
from kombu import Producer

from messaging.brokers.base import BrokerError, Capabilities, Delivery, OutgoingMessage, PublishResult
from messaging.brokers.kombu_bus import DEFAULT_EXCHANGE, KombuBus, KombuReader, retry_headers
from messaging.topology import QUEUE_DELIVERY_LIMIT
from messaging.transport.sqlite import NOT_BEFORE_HEADER


class EmbeddedBus(KombuBus):
    capabilities = Capabilities(
        name="Embedded (SQLite)",
        publish_confirmation="a batch of publishes returns once its rows are committed to the SQLite file, in one transaction",
        pub_sub="a topic exchange routed in the publishing process; bindings are stored in the file",
        pattern_routing="AMQP topic bindings on the routing key (`*` one word, `#` any number)",
        delivery_count="exact: each claim counts, sent as `x-delivery-count`",
        delivery_limit=f"in the consumer runtime: past {QUEUE_DELIVERY_LIMIT} deliveries it is dead-lettered",
        dead_letters="Eventshop's dead-letter store only",
        delayed_delivery="native: a message stays invisible until its not-before time",
        per_key_ordering="per queue, for one consumer",
        unrouted_events="an alternate exchange, as on RabbitMQ: kept in `shop.events.unrouted`",
        priorities="none",
        high_availability="none: one file on one machine",
        consumer_count=False,
    )

    def one_commit(self, channel):
        # The SQLite file broker commits a batch of publishes or acks at once; kombu's memory:// cannot.
        return channel.one_commit() if hasattr(channel, "one_commit") else nullcontext()

    def _send(self, messages: Sequence[OutgoingMessage], *, exchange, routing_key: str | None) -> PublishResult:
        """All of the batch in one SQLite transaction: confirmed together once it commits, or not at all."""
        if not hasattr(self.producer.channel, "one_commit"):
            return super()._send(messages, exchange=exchange, routing_key=routing_key)
        try:
            with self.producer.channel.one_commit():
                for message in messages:
                    self._publish_one(self.producer, message, exchange=exchange, routing_key=routing_key)
        except (*self.errors, sqlite3.Error) as error:
            return PublishResult((), BrokerError(f"{type(error).__name__}: {error}"))
        return PublishResult(tuple(message.message_id for message in messages))

    def transport_options(self) -> dict:
        return {"visibility_timeout": settings.BROKER_VISIBILITY_TIMEOUT_SECONDS}

    def send_retry(self, producer: Producer, reader: KombuReader, delivery: Delivery, *, attempt: int,
                   delay_seconds: float) -> None:
        headers = retry_headers(delivery, attempt)
        headers[NOT_BEFORE_HEADER] = time.time() + delay_seconds
        producer.publish(
            delivery.body,
            exchange=DEFAULT_EXCHANGE,
            routing_key=reader.subscription.queue_name,
            content_type=delivery.content_type,
            content_encoding="utf-8",
            delivery_mode=2,
            headers=headers,
            retry=False,
        )
