"""The embedded default: the SQLite file broker (messaging/transport/sqlite.py) through kombu, so
the demo runs with no services. It behaves like SQS underneath: a claimed message comes back after
the visibility timeout, and a retry waits invisible until its not-before time.

`memory://` (kombu's in-process broker) takes the same adapter in unit tests.
"""
from __future__ import annotations

import time

from django.conf import settings
from kombu import Producer

from messaging.brokers.base import Capabilities, Delivery
from messaging.brokers.kombu_bus import DEFAULT_EXCHANGE, KombuBus, KombuReader, retry_headers
from messaging.topology import QUEUE_DELIVERY_LIMIT
from messaging.transport.sqlite import NOT_BEFORE_HEADER


class EmbeddedBus(KombuBus):
    capabilities = Capabilities(
        name="Embedded (SQLite)",
        publish_confirmation="a publish returns once the row is committed to the SQLite file",
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
