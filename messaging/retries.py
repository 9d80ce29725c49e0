"""Retrying a failed message later, without holding up the messages behind it.

The failed message is acked and a copy (same body, same event id) is put back on the consumer's
queue after a delay that grows exponentially with jitter. RabbitMQ does the waiting in delay
queues: a queue nobody consumes, whose messages expire (TTL) and are dead-lettered back to the
consumer's queue. The embedded broker keeps a message invisible until its not-before time.
"""
from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING

from django.conf import settings
from kombu import Connection, Exchange, Producer, Queue

from messaging.broker import broker_is_rabbitmq
from messaging.transport.sqlite import NOT_BEFORE_HEADER
from messaging.topology import Subscription

if TYPE_CHECKING:
    from messaging.consumer import Delivery

ATTEMPT_HEADER = "x-eventshop-failed-attempts"
# Headers the broker adds on its way; a retried copy must not carry them forward.
BROKER_HEADERS = {"x-death", "x-delivery-count", "x-first-death-exchange", "x-first-death-queue", "x-first-death-reason",
                  "x-last-death-exchange", "x-last-death-queue", "x-last-death-reason"}
# Delay queues by power of two: a message waits in the one matching its delay, so a short delay
# never queues behind a long one (RabbitMQ expires messages only at the head of a queue).
DELAY_LEVELS_SECONDS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def retry_delay_seconds(attempt: int) -> float:
    """Exponential backoff with "equal jitter": a delay drawn from the upper half of the window, so
    retries spread out (no herd) yet never come back sooner than half the backoff."""
    ceiling = min(settings.CONSUMER_RETRY_MAX_SECONDS, settings.CONSUMER_RETRY_BASE_SECONDS * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


class RetryScheduler:
    """Puts a failed message back later. Give it its own connection, not the consuming one: a
    broker round trip made inside a delivery callback on the consuming connection would dispatch
    the next delivery into that callback, re-entrantly."""

    def __init__(self, subscription: Subscription, connection: Connection):
        self.subscription = subscription
        self.producer = Producer(connection.default_channel)

    def retry_headers(self, delivery: Delivery, attempt: int) -> dict:
        headers = {key: value for key, value in delivery.headers.items() if key not in BROKER_HEADERS}
        headers[ATTEMPT_HEADER] = attempt
        return headers

    def schedule(self, delivery: Delivery, *, attempt: int, delay_seconds: float) -> None:
        raise NotImplementedError


class RabbitMQDelayQueues(RetryScheduler):
    def __init__(self, subscription: Subscription, connection: Connection):
        super().__init__(subscription, connection)
        for level in DELAY_LEVELS_SECONDS:
            self.delay_queue(level)(self.producer.channel).declare()

    def delay_queue(self, level_seconds: int) -> Queue:
        return Queue(
            f"{self.subscription.queue_name}.retry.{level_seconds}s",
            durable=True,
            queue_arguments={
                # Expired messages go back, through the default exchange, to the consumer's queue.
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": self.subscription.queue_name,
                "x-message-ttl": level_seconds * 1000,
            },
        )

    def schedule(self, delivery: Delivery, *, attempt: int, delay_seconds: float) -> None:
        level = next((level for level in DELAY_LEVELS_SECONDS if level >= delay_seconds), DELAY_LEVELS_SECONDS[-1])
        queue = self.delay_queue(level)
        self.producer.publish(
            delivery.body,
            exchange=Exchange(""),
            routing_key=queue.name,
            content_type=delivery.content_type,
            content_encoding="utf-8",
            delivery_mode=2,
            headers=self.retry_headers(delivery, attempt),
            # Jitter within the level; the queue's TTL is the upper bound.
            expiration=max(delay_seconds, 0.001),
            retry=False,
        )


class EmbeddedDelayedDelivery(RetryScheduler):
    def schedule(self, delivery: Delivery, *, attempt: int, delay_seconds: float) -> None:
        headers = self.retry_headers(delivery, attempt)
        headers[NOT_BEFORE_HEADER] = time.time() + delay_seconds
        self.producer.publish(
            delivery.body,
            exchange=Exchange(""),
            routing_key=self.subscription.queue_name,
            content_type=delivery.content_type,
            content_encoding="utf-8",
            delivery_mode=2,
            headers=headers,
            retry=False,
        )


def retry_scheduler_for(subscription: Subscription, connection: Connection) -> RetryScheduler:
    if broker_is_rabbitmq(connection.as_uri(include_password=True)):
        return RabbitMQDelayQueues(subscription, connection)
    return EmbeddedDelayedDelivery(subscription, connection)
