"""A message as it came off a queue, and which failures are worth another attempt."""
from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, InterfaceError, OperationalError
from kombu.exceptions import OperationalError as KombuOperationalError
from kombu.message import Message

from messaging.events import CONTENT_TYPE, DATA_CONTENT_TYPE
from messaging.faults import InjectedFailure
from messaging.retries import ATTEMPT_HEADER


class TransientError(Exception):
    """Raised by a handler for a failure that may pass (a downstream timeout): retried with backoff."""


# Failures worth retrying: the database or a broker (a handler sending a Celery job) was
# unavailable, a race another attempt will not lose, or a failure an operator injected.
TRANSIENT_ERRORS = (TransientError, OperationalError, InterfaceError, IntegrityError, KombuOperationalError,
                    ConnectionError, InjectedFailure)
ACCEPTED_CONTENT_TYPES = {CONTENT_TYPE, DATA_CONTENT_TYPE}


@dataclass
class Delivery:
    """One message as it came off the queue, before any parsing."""

    body: bytes
    content_type: str
    routing_key: str
    headers: dict

    @classmethod
    def from_message(cls, message: Message) -> Delivery:
        body = message.body if isinstance(message.body, bytes) else str(message.body).encode()
        return cls(
            body=body,
            content_type=message.content_type or "",
            routing_key=message.delivery_info.get("routing_key", ""),
            headers=dict(message.headers or {}),
        )

    @property
    def redeliveries(self) -> int:
        """How often the broker delivered this very message before without an ack (consumer crashes)."""
        return int(self.headers.get("x-delivery-count", 0) or 0)

    @property
    def attempt(self) -> int:
        """1 for the first try; counts handled failures (our header) and crashes (the broker's)."""
        return 1 + int(self.headers.get(ATTEMPT_HEADER, 0)) + self.redeliveries
