"""Retrying a failed message later, without holding up the messages behind it.

The policy lives here, the same on every broker: exponential backoff with jitter, and how many
attempts a transient failure gets (CONSUMER_MAX_ATTEMPTS). How the message waits is each adapter's
(`SubscriptionReader.retry_later`): RabbitMQ delay queues (TTL, then dead-lettered back), the
embedded broker's not-before time, SQS's visibility timeout, ActiveMQ's scheduled delivery.
"""
from __future__ import annotations

import random

from django.conf import settings

from messaging.brokers import ATTEMPT_HEADER

__all__ = ["ATTEMPT_HEADER", "retry_delay_seconds"]


def retry_delay_seconds(attempt: int) -> float:
    """Exponential backoff with "equal jitter": a delay drawn from the upper half of the window, so
    retries spread out (no herd) yet never come back sooner than half the backoff."""
    ceiling = min(settings.CONSUMER_RETRY_MAX_SECONDS, settings.CONSUMER_RETRY_BASE_SECONDS * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)
