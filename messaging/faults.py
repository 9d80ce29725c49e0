"""Faults an operator can inject into a running consumer, to watch the guarantees hold.

They are stored on the consumer's `ConsumerState` row, so the operations view, a management command
(`manage.py fault`) or a test can set them (messaging/operations.py holds the writes), and the
consumer picks them up at its next heartbeat.
"""
from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, fields

from messaging.models import ConsumerState
from messaging.topology import SUBSCRIPTIONS


class InjectedFailure(Exception):
    """A failure an operator asked for. Transient: the message is retried like any other."""


@dataclass
class FaultPlan:
    # Fail this share of messages (0 to 1) with a transient error.
    fail_share: float = 0.0
    # Fail every message's first N attempts with a transient error (shows retries and backoff).
    fail_first_attempts: int = 0
    # Sleep this long in every handler call (a slow downstream).
    slow_ms: int = 0
    # Kill the process (SIGKILL) once, after the next commit and before its ack.
    crash_after_commit: bool = False
    # Handle this share of messages twice, as a broker redelivery would.
    duplicate_share: float = 0.0
    # Hold this many messages and handle them newest first, as an unordered broker could.
    reorder_window: int = 0

    @classmethod
    def from_dict(cls, data: dict | None) -> FaultPlan:
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in (data or {}).items() if key in known})

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def active(self) -> bool:
        return self != FaultPlan()

    def should_duplicate(self) -> bool:
        return bool(self.duplicate_share) and random.random() < self.duplicate_share

    def before_handle(self, attempt: int) -> None:
        if self.slow_ms:
            time.sleep(self.slow_ms / 1000)
        if attempt <= self.fail_first_attempts:
            raise InjectedFailure(f"injected failure of attempt {attempt} of {self.fail_first_attempts}")
        if self.fail_share and random.random() < self.fail_share:
            raise InjectedFailure(f"injected failure ({self.fail_share:.0%} of messages)")


def consumer_faults_get(*, consumer: str) -> FaultPlan:
    state = ConsumerState.objects.using(SUBSCRIPTIONS[consumer].database).filter(consumer=consumer).first()
    return FaultPlan.from_dict(state.faults if state else None)
