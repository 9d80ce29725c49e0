"""A message as it came off a queue (the port's `Delivery`), and which failures are worth another attempt."""
from __future__ import annotations

from django.db import IntegrityError, InterfaceError, OperationalError
# A handler that sends a Celery job may find Celery's broker down, whichever broker the events use.
from kombu.exceptions import OperationalError as CeleryBrokerUnavailable

from messaging.brokers import BrokerError, Delivery
from messaging.events import CONTENT_TYPE, DATA_CONTENT_TYPE
from messaging.faults import InjectedFailure


class TransientError(Exception):
    """Raised by a handler for a failure that may pass (a downstream timeout): retried with backoff."""


# Failures worth retrying: the database or a broker (a handler sending a Celery job) was
# unavailable, a race another attempt will not lose, or a failure an operator injected.
TRANSIENT_ERRORS = (TransientError, OperationalError, InterfaceError, IntegrityError, BrokerError,
                    CeleryBrokerUnavailable, ConnectionError, InjectedFailure)
ACCEPTED_CONTENT_TYPES = {CONTENT_TYPE, DATA_CONTENT_TYPE}

__all__ = ["ACCEPTED_CONTENT_TYPES", "TRANSIENT_ERRORS", "Delivery", "TransientError"]
