"""The transactional outbox: record events with the change, publish them after commit, never lose one.

A service calls `outbox_event_record` inside its transaction. After commit the writing process
publishes the row at once (`outbox_publish_after_commit`); the relay process sweeps any row left
unsent (crash, broker outage) with `outbox_relay_publish_pending`. A row is marked published only
after the broker confirmed it, so the worst a crash can do is publish an event twice, which every
consumer's inbox absorbs.
"""
from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import connections, transaction
from django.db.models import F
from django.utils import timezone

from messaging.brokers import BrokerError, EventBus, OutgoingMessage, PublishResult
from messaging.correlation import current_correlation_id
from messaging.events import CONTENT_TYPE, Envelope, Event
from messaging.models import OutboxMessage
from messaging.sql import insert_one
from messaging.topology import event_bus_connect

logger = logging.getLogger(__name__)

class MessageTooLarge(ValueError):
    pass


def outbox_event_record(event: Event, *, using: str) -> OutboxMessage:
    """Record `event` in database `using`'s outbox; must run inside the transaction of the change."""
    if not connections[using].in_atomic_block:
        raise RuntimeError("outbox_event_record must run inside transaction.atomic(using=...)")
    last_sequence = _last_sequence(using, source=event.source, subject=event.subject)
    envelope = Envelope(event=event, sequence=(last_sequence or 0) + 1, correlation_id=current_correlation_id.get())
    body = envelope.to_json()
    if len(body.encode()) > settings.MESSAGE_MAX_BYTES:
        raise MessageTooLarge(f"{event.type} is {len(body.encode())} bytes; the limit is {settings.MESSAGE_MAX_BYTES}")
    message = OutboxMessage(
        event_id=envelope.id,
        source=envelope.source,
        event_type=envelope.type,
        subject=envelope.subject,
        sequence=envelope.sequence,
        routing_key=event.routing_key(),
        body=body,
        correlation_id=envelope.correlation_id,
        created_at=envelope.time,
    )
    insert_one(message, using=using)
    if settings.OUTBOX_PUBLISH_ON_COMMIT:
        # Dropped by Django if the transaction (or the savepoint it was recorded in) rolls back.
        transaction.on_commit(lambda: _after_commit_publisher.committed(using, message), using=using)
    return message


def _last_sequence(using: str, *, source: str, subject: str) -> int | None:
    """The subject's last recorded sequence: the same query as `aggregate(Max("sequence"))`, written
    out because the ORM's compiling of it cost more CPU than the round trip (consumer_cost.py)."""
    connection = connections[using]
    table = connection.ops.quote_name(OutboxMessage._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT MAX(sequence) FROM {table} WHERE source = %s AND subject = %s", [source, subject])
        return cursor.fetchone()[0]


def outbox_outgoing(message: OutboxMessage) -> OutgoingMessage:
    """An outbox row as the bus publishes it: the body byte for byte, routed by its key."""
    return OutgoingMessage(
        message_id=str(message.event_id),
        routing_key=message.routing_key,
        body=message.body.encode(),
        content_type=CONTENT_TYPE,
        headers={"ce-type": message.event_type, "correlation-id": message.correlation_id},
        ordering_key=message.subject,
    )


def outbox_publish(*, using: str, messages: list[OutboxMessage], bus: EventBus) -> tuple[int, Exception | None]:
    """Publish `messages` in order and mark exactly the ones the broker confirmed.

    Returns how many were published and the error that stopped the rest, if any. It does not raise,
    so a caller inside a transaction keeps the marks of what the broker did confirm.
    """
    if not messages:
        return 0, None
    try:
        result = bus.publish([outbox_outgoing(message) for message in messages])
    except BrokerError as error:  # an adapter that failed before sending anything
        result = PublishResult((), error)
    confirmed_ids = set(result.confirmed)
    confirmed = [message.pk for message in messages if str(message.event_id) in confirmed_ids]
    if result.error is not None:
        unconfirmed = [message.pk for message in messages if str(message.event_id) not in confirmed_ids]
        OutboxMessage.objects.using(using).filter(pk__in=unconfirmed).update(
            publish_attempts=F("publish_attempts") + 1,
            last_error=f"{type(result.error).__name__}: {result.error}"[:2000],
        )
    if confirmed:
        OutboxMessage.objects.using(using).filter(pk__in=confirmed, published_at__isnull=True).update(
            published_at=timezone.now(), publish_attempts=F("publish_attempts") + 1
        )
    return len(confirmed), result.error


def outbox_relay_publish_pending(*, using: str, bus: EventBus, grace_seconds: float, limit: int) -> int:
    """Publish rows older than `grace_seconds` that are still unsent; returns how many were published.

    On PostgreSQL the rows are locked with SKIP LOCKED, so several relays never publish the same
    row at once. SQLite has no row locks; one relay is run there, and a rare double publish (with
    the writer's own after-commit publish) is absorbed by the consumers' inboxes.
    Raises the broker error that stopped it, after marking what was confirmed.
    """
    cutoff = timezone.now() - timedelta(seconds=grace_seconds)
    pending = OutboxMessage.objects.using(using).filter(published_at__isnull=True, created_at__lte=cutoff).order_by("id")
    if connections[using].features.has_select_for_update_skip_locked:
        with transaction.atomic(using=using):
            published, error = outbox_publish(
                using=using, messages=list(pending.select_for_update(skip_locked=True)[:limit]), bus=bus
            )
    else:
        published, error = outbox_publish(using=using, messages=list(pending[:limit]), bus=bus)
    if error is not None:
        raise error
    return published


class _AfterCommitPublisher(threading.local):
    """One bus per thread of a writing process, with a short circuit breaker: while the broker
    is unreachable, requests do not wait on it; the relay's sweep publishes what they left.

    Inside `outbox_publish_after_commit_batched` (a consumer's batch) the committed rows are
    collected and published together on the way out, with one wait for all their confirms."""

    OPEN_SECONDS = 5.0  # after a failure, skip publishing for this long instead of timing out per request

    def __init__(self):
        self.bus: EventBus | None = None
        self.open_until = 0.0
        self.collected: dict[str, list[OutboxMessage]] | None = None

    def committed(self, using: str, message: OutboxMessage) -> None:
        if self.collected is not None:
            self.collected.setdefault(using, []).append(message)
        else:
            self.publish_rows(using, [message])

    def publish(self, using: str, message_ids: list[int]) -> None:
        if time.monotonic() < self.open_until or not message_ids:
            return
        self.publish_rows(using, list(OutboxMessage.objects.using(using).filter(
            pk__in=message_ids, published_at__isnull=True).order_by("id")))

    def publish_rows(self, using: str, messages: list[OutboxMessage]) -> None:
        """Publish rows just committed (no need to read them back) and mark what the broker confirmed."""
        if time.monotonic() < self.open_until or not messages:
            return
        try:
            if self.bus is None:
                self.bus = event_bus_connect(connect_timeout=1)
            _, error = outbox_publish(using=using, messages=messages, bus=self.bus)
        except Exception as connect_error:  # the change is committed: nothing may fail the request now
            error = connect_error
        if error is not None:
            logger.warning("publish after commit failed, the relay will retry: %s", error)
            self.open_until = time.monotonic() + self.OPEN_SECONDS
            self.reset()

    def reset(self) -> None:
        if self.bus is not None:
            self.bus.close()
        self.bus = None


_after_commit_publisher = _AfterCommitPublisher()


def outbox_publish_after_commit(*, using: str, message_ids: list[int]) -> None:
    _after_commit_publisher.publish(using, message_ids)


@contextmanager
def outbox_publish_after_commit_batched():
    """Within this block, rows committed by this thread are not published one commit at a time but
    together when the block ends: one batch, one wait for all its confirms (a consumer's batch)."""
    publisher = _after_commit_publisher
    if publisher.collected is not None:  # nested: the outer block publishes
        yield
        return
    publisher.collected = {}
    try:
        yield
    finally:
        collected, publisher.collected = publisher.collected, None
        for using, messages in collected.items():
            publisher.publish_rows(using, messages)
