"""What happens to a batch of messages (docs/guarantees.md explains it): at-least-once in, exactly-once effects out.

A batch is one database transaction; each message in it runs in its own savepoint: record the event
id in the inbox (a unique constraint turns a redelivery into a skip), check the subject's sequence
(stale events are skipped, early ones applied), run the handler. A named transient failure rolls
back that message's savepoint and is retried later with backoff; anything else that can never
succeed is dead-lettered with its reason; the rest of the batch commits. The attempts are inserted
together and the subjects' progress written once, at the end of the batch. Nothing raises out of
`process_batch` but an unreachable database, so no message crashes the consumer.
"""
from __future__ import annotations

import logging
import os
import socket
import time
import traceback
from collections.abc import Sequence

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import F
from django.utils import timezone

from messaging.consumer.delivery import ACCEPTED_CONTENT_TYPES, TRANSIENT_ERRORS, Delivery
from messaging.dead_letters import dead_letter_record
from messaging.events import Envelope, InvalidEvent
from messaging.faults import FaultPlan
from messaging.jobs import jobs_collected, jobs_send_together
from messaging.models import DeliveryAttempt, DeliveryOutcome, InboxMessage, RedeliveryCount, SubjectProgress
from messaging.correlation import current_correlation_id
from messaging.brokers import SubscriptionReader
from messaging.retries import retry_delay_seconds
from messaging.sql import insert_all, insert_unless_present, update_column
from messaging.topology import QUEUE_DELIVERY_LIMIT, Subscription

logger = logging.getLogger(__name__)


class MessageProcessor:
    """Handles one subscription's messages, a batch per transaction. Subclass and override `handle` to change dispatch."""

    def __init__(self, subscription: Subscription):
        self.subscription = subscription
        self.database = subscription.database
        self.handlers = subscription.handlers()
        self.faults = FaultPlan()  # injected by operators; the runtime refreshes it each heartbeat
        self.worker = f"{socket.gethostname()}:{os.getpid()}"

    # --- the one method a handler author cares about ---------------------------------------

    def handle(self, envelope: Envelope) -> None:
        self.handlers[envelope.type](envelope)

    # --- per message ---------------------------------------------------------------------------

    def process(self, delivery: Delivery, reader: SubscriptionReader) -> str:
        """Handle one delivery (a batch of one) and return its outcome. On "retry" the delivery is
        already settled (`reader.retry_later`); for any other outcome the caller acks it after this returns."""
        [outcome] = self.process_batch([delivery], reader)
        return outcome

    def process_batch(self, deliveries: Sequence[Delivery], reader: SubscriptionReader, *,
                      duplicate=lambda: False) -> list[str]:
        """Handle `deliveries` in one transaction, each in its own savepoint; return their outcomes in order.

        Deliveries whose outcome is "retry" are settled already; the caller acks the others after
        this returns (the transaction has committed). `duplicate()` says whether to handle a message
        again right away (the injected redelivery). Raises DatabaseError when the database itself
        failed: nothing of the batch is committed then, and the caller requeues what is unsettled.
        """
        redeliveries = [self.redeliveries_of(delivery) for delivery in deliveries]
        batch = _Batch()
        outcomes = []
        with transaction.atomic(using=self.database):
            envelopes = [self._parse_or_none(delivery, count) for delivery, count in zip(deliveries, redeliveries)]
            if self.subscription.ordered:
                batch.progress = self.progress_lock([envelope for envelope in envelopes if envelope is not None])
            for delivery, count, envelope in zip(deliveries, redeliveries, envelopes):
                outcome = self._process_in_batch(delivery, count, envelope, reader, batch)
                if envelope is not None and outcome in REPEATABLE_OUTCOMES and duplicate():
                    self._process_in_batch(delivery, count, envelope, reader, batch)  # must be a duplicate
                outcomes.append(outcome)
            batch.write(self)
            # Before the commit, all at once: a batch whose jobs Celery's broker did not take does not commit.
            jobs_send_together(batch.jobs)
        return outcomes

    def _parse_or_none(self, delivery: Delivery, redeliveries: int) -> Envelope | None:
        if redeliveries >= QUEUE_DELIVERY_LIMIT:
            return None
        try:
            return self.parse(delivery)
        except InvalidEvent:
            return None  # dead-lettered with its reason below

    def _process_in_batch(self, delivery: Delivery, redeliveries: int, envelope: Envelope | None,
                          reader: SubscriptionReader, batch: _Batch) -> str:
        started = time.monotonic()
        if redeliveries >= QUEUE_DELIVERY_LIMIT:
            # Consumers died on it again and again (RabbitMQ's quorum queue and SQS's redrive policy
            # dead-letter it first; this is the same limit where the broker does not). Without a
            # limit it would loop forever.
            self.give_up(delivery, "delivery_limit", f"delivered {redeliveries + 1} times without an ack",
                         envelope=None)
            return DeliveryOutcome.DEAD_LETTERED
        if envelope is None:
            try:
                self.parse(delivery)
            except InvalidEvent as error:
                self.give_up(delivery, error.reason, error.detail, envelope=None)
                return DeliveryOutcome.DEAD_LETTERED
        token = current_correlation_id.set(envelope.correlation_id or str(envelope.id))
        moved_before = dict(batch.moved)
        try:
            # The message's savepoint: whatever fails here undoes only this message's writes (and jobs).
            with jobs_collected() as jobs, transaction.atomic(using=self.database):
                outcome = self.apply(envelope, delivery, batch)
            batch.jobs += jobs
        except TRANSIENT_ERRORS as error:
            batch.moved = moved_before
            self._raise_if_transaction_lost(error)
            outcome = self.retry_or_give_up(delivery, envelope, error, reader, batch=batch)
        except InvalidEvent as error:
            batch.moved = moved_before
            self.give_up(delivery, error.reason, error.detail, envelope=envelope)
            outcome = DeliveryOutcome.DEAD_LETTERED
        except Exception as error:  # a bug or bad data: retrying cannot help, so keep it for a human
            batch.moved = moved_before
            self._raise_if_transaction_lost(error)
            self.give_up(delivery, "handler_error", _describe(error, with_traceback=True), envelope=envelope)
            outcome = DeliveryOutcome.DEAD_LETTERED
        finally:
            current_correlation_id.reset(token)
        if outcome not in (DeliveryOutcome.RETRY, DeliveryOutcome.DEAD_LETTERED):
            batch.attempts.append(self.attempt_row(envelope, delivery, outcome, started=started))
        # One line per delivery, under the message's correlation id: what the console of a consumer shows.
        token = current_correlation_id.set(envelope.correlation_id or str(envelope.id))
        logger.info("%s %s %s/%s #%s attempt %d: %s in %.1f ms", self.subscription.name, envelope.type,
                    envelope.source.strip("/"), envelope.subject, envelope.sequence, delivery.attempt, outcome,
                    (time.monotonic() - started) * 1000)
        current_correlation_id.reset(token)
        return outcome

    def _raise_if_transaction_lost(self, error: Exception) -> None:
        """A failure the savepoint could not undo (the connection dropped): the batch is lost, not the message."""
        if transaction.get_connection(self.database).needs_rollback:
            raise DatabaseError(f"the batch's transaction is lost: {type(error).__name__}: {error}") from error

    def redeliveries_of(self, delivery: Delivery) -> int:
        """The broker's count, or, where it only says "redelivered", ours: one row per message that
        came back, counted up in its own transaction before any work (a crash must not undo it)."""
        if delivery.redeliveries_exact or not delivery.redeliveries or not delivery.message_id:
            return delivery.redeliveries
        counts = RedeliveryCount.objects.using(self.database)
        with transaction.atomic(using=self.database):
            counts.bulk_create([RedeliveryCount(consumer=self.subscription.name, message_id=delivery.message_id)],
                               ignore_conflicts=True)
            counts.filter(consumer=self.subscription.name, message_id=delivery.message_id).update(
                redeliveries=F("redeliveries") + 1)
        return counts.get(consumer=self.subscription.name, message_id=delivery.message_id).redeliveries

    def parse(self, delivery: Delivery) -> Envelope:
        if len(delivery.body) > settings.MESSAGE_MAX_BYTES:
            raise InvalidEvent("too_large", f"{len(delivery.body)} bytes; the limit is {settings.MESSAGE_MAX_BYTES}")
        if delivery.content_type not in ACCEPTED_CONTENT_TYPES:
            raise InvalidEvent("unsupported_content_type", f"content type {delivery.content_type!r} is not JSON")
        envelope = Envelope.from_json(delivery.body, routing_key=delivery.routing_key)
        if envelope.type not in self.handlers:
            raise InvalidEvent("no_handler", f"{self.subscription.name} has no handler for {envelope.type}")
        return envelope

    def progress_lock(self, envelopes: list[Envelope]) -> dict[tuple[str, str], SubjectProgress]:
        """Lock the progress rows of every subject in the batch (made if new), in one order, in two
        statements; the batch then checks and moves them in memory and writes them once at its end.
        The locks keep two events of one subject from being applied concurrently."""
        keys = sorted({(envelope.source, envelope.subject) for envelope in envelopes})
        if not keys:
            return {}
        rows = SubjectProgress.objects.using(self.database)
        rows.bulk_create([SubjectProgress(consumer=self.subscription.name, source=source, subject=subject)
                          for source, subject in keys], ignore_conflicts=True)
        locked = rows.select_for_update().filter(consumer=self.subscription.name,
                                                 subject__in={subject for _, subject in keys}).order_by("id")
        wanted = set(keys)
        return {(row.source, row.subject): row for row in locked if (row.source, row.subject) in wanted}

    def apply(self, envelope: Envelope, delivery: Delivery, batch: _Batch) -> str:
        """Inbox, sequence check and handler for one message, inside its savepoint."""
        outcome = DeliveryOutcome.APPLIED
        key = (envelope.source, envelope.subject)
        if self.subscription.ordered:
            last_sequence = batch.last_sequence(key)
            if envelope.sequence <= last_sequence:
                outcome = DeliveryOutcome.STALE
            elif envelope.sequence > last_sequence + 1:
                outcome = DeliveryOutcome.EARLY
        # The inbox row goes in with its final outcome: one statement, no read after it.
        if not self.inbox_insert(envelope, outcome):
            return DeliveryOutcome.DUPLICATE
        if outcome == DeliveryOutcome.STALE:
            return outcome
        self.handle_with_faults(envelope, delivery)
        if self.subscription.ordered:
            batch.moved[key] = envelope.sequence
        return outcome

    def inbox_insert(self, envelope: Envelope, outcome: str) -> bool:
        """Record the event in the inbox; False if this consumer has it already (a redelivery)."""
        row = InboxMessage(consumer=self.subscription.name, event_id=envelope.id, event_type=envelope.type,
                           source=envelope.source, subject=envelope.subject, sequence=envelope.sequence,
                           outcome=outcome)
        return insert_unless_present(row, using=self.database, conflict_fields=("consumer", "event_id"))

    def handle_with_faults(self, envelope: Envelope, delivery: Delivery) -> None:
        self.faults.before_handle(delivery.attempt)
        self.handle(envelope)

    def retry_or_give_up(self, delivery: Delivery, envelope: Envelope, error: Exception, reader: SubscriptionReader,
                         *, batch: _Batch) -> str:
        attempt = delivery.attempt
        reason = _describe(error)
        if attempt >= settings.CONSUMER_MAX_ATTEMPTS:
            self.give_up(delivery, "retries_exhausted", f"after {attempt} attempts: {reason}", envelope=envelope)
            return DeliveryOutcome.DEAD_LETTERED
        delay = retry_delay_seconds(attempt)
        # Scheduled before the attempt is recorded: if the database is what failed, the retry must not depend on it.
        reader.retry_later(delivery, attempt=attempt, delay_seconds=delay)
        batch.attempts.append(self.attempt_row(envelope, delivery, DeliveryOutcome.RETRY, started=time.monotonic(),
                                               reason=type(error).__name__, detail=f"retry in {delay:.1f}s: {reason}"))
        return DeliveryOutcome.RETRY

    def give_up(self, delivery: Delivery, reason: str, detail: str, *, envelope: Envelope | None) -> None:
        dead_letter_record(
            consumer=self.subscription.name,
            database=self.database,
            body=delivery.body,
            content_type=delivery.content_type,
            routing_key=delivery.routing_key,
            headers=delivery.headers,
            reason=reason,
            detail=detail,
            attempts=delivery.attempt,
            envelope=envelope,
            worker=self.worker,
        )
        logger.warning("%s dead-lettered a message: %s (%s)", self.subscription.name, reason, detail.splitlines()[0] if detail else "")

    def attempt_row(self, envelope: Envelope, delivery: Delivery, outcome: str, *, started: float, reason: str = "",
                    detail: str = "") -> DeliveryAttempt:
        return DeliveryAttempt(
            consumer=self.subscription.name,
            event_id=envelope.id,
            event_type=envelope.type,
            subject=envelope.subject,
            sequence=envelope.sequence,
            attempt=delivery.attempt,
            outcome=outcome,
            reason=reason,
            detail=detail,
            duration_ms=(time.monotonic() - started) * 1000,
            correlation_id=envelope.correlation_id,
            worker=self.worker,
            created_at=timezone.now(),
        )


REPEATABLE_OUTCOMES = frozenset({DeliveryOutcome.APPLIED, DeliveryOutcome.EARLY, DeliveryOutcome.DUPLICATE,
                                 DeliveryOutcome.STALE})


class _Batch:
    """What a batch writes once, at its end: the attempt records, and the subjects' progress it moved."""

    def __init__(self):
        self.attempts: list[DeliveryAttempt] = []
        self.progress: dict[tuple[str, str], SubjectProgress] = {}  # locked rows, as read
        self.moved: dict[tuple[str, str], int] = {}  # subject -> its new last sequence
        self.jobs: list = []  # Celery jobs of the messages whose savepoints held

    def last_sequence(self, key: tuple[str, str]) -> int:
        return self.moved[key] if key in self.moved else self.progress[key].last_sequence

    def write(self, processor: MessageProcessor) -> None:
        database = processor.database
        update_column(SubjectProgress, {self.progress[key].pk: sequence for key, sequence in self.moved.items()},
                      field="last_sequence", using=database)
        insert_all(self.attempts, using=database)
        self.attempts, self.moved = [], {}


def _describe(error: Exception, *, with_traceback: bool = False) -> str:
    text = f"{type(error).__name__}: {error}"
    if with_traceback:
        text += "\n" + "".join(traceback.format_exception(error))[-4000:]
    return text
