"""What happens to one message (docs/guarantees.md explains it): at-least-once in, exactly-once effects out.

For each message, in one database transaction: record the event id in the inbox (a unique
constraint turns a redelivery into a skip), check the subject's sequence (stale events are skipped,
early ones applied), run the handler, record the attempt. A named transient failure is retried later
with backoff; anything else that can never succeed is dead-lettered with its reason. Nothing raises
out of `process` but an unreachable database, so no message crashes the consumer.
"""
from __future__ import annotations

import logging
import os
import socket
import time
import traceback

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F

from messaging.consumer.delivery import ACCEPTED_CONTENT_TYPES, TRANSIENT_ERRORS, Delivery
from messaging.dead_letters import dead_letter_record
from messaging.events import Envelope, InvalidEvent
from messaging.faults import FaultPlan
from messaging.models import DeliveryAttempt, DeliveryOutcome, InboxMessage, RedeliveryCount, SubjectProgress
from messaging.correlation import current_correlation_id
from messaging.brokers import SubscriptionReader
from messaging.retries import retry_delay_seconds
from messaging.topology import QUEUE_DELIVERY_LIMIT, Subscription

logger = logging.getLogger(__name__)


class MessageProcessor:
    """Handles one subscription's messages one at a time. Subclass and override `handle` to change dispatch."""

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
        """Handle one delivery and return its outcome. On "retry" the delivery is already settled
        (`reader.retry_later`); for any other outcome the caller acks it after this returns."""
        started = time.monotonic()
        redeliveries = self.redeliveries_of(delivery)
        if redeliveries >= QUEUE_DELIVERY_LIMIT:
            # Consumers died on it again and again (RabbitMQ's quorum queue and SQS's redrive policy
            # dead-letter it first; this is the same limit where the broker does not). Without a
            # limit it would loop forever.
            self.give_up(delivery, "delivery_limit", f"delivered {redeliveries + 1} times without an ack",
                         envelope=None)
            return DeliveryOutcome.DEAD_LETTERED
        try:
            envelope = self.parse(delivery)
        except InvalidEvent as error:
            self.give_up(delivery, error.reason, error.detail, envelope=None)
            return DeliveryOutcome.DEAD_LETTERED
        token = current_correlation_id.set(envelope.correlation_id or str(envelope.id))
        try:
            outcome = self.apply(envelope, delivery, started)
        except TRANSIENT_ERRORS as error:
            outcome = self.retry_or_give_up(delivery, envelope, error, reader)
        except InvalidEvent as error:
            self.give_up(delivery, error.reason, error.detail, envelope=envelope)
            outcome = DeliveryOutcome.DEAD_LETTERED
        except Exception as error:  # a bug or bad data: retrying cannot help, so keep it for a human
            self.give_up(delivery, "handler_error", _describe(error, with_traceback=True), envelope=envelope)
            outcome = DeliveryOutcome.DEAD_LETTERED
        finally:
            current_correlation_id.reset(token)
        return outcome

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

    def apply(self, envelope: Envelope, delivery: Delivery, started: float) -> str:
        name = self.subscription.name
        with transaction.atomic(using=self.database):
            try:
                # A savepoint, so a duplicate leaves the outer transaction usable for the record.
                with transaction.atomic(using=self.database):
                    inbox = InboxMessage.objects.using(self.database).create(
                        consumer=name,
                        event_id=envelope.id,
                        event_type=envelope.type,
                        source=envelope.source,
                        subject=envelope.subject,
                        sequence=envelope.sequence,
                        outcome=InboxMessage.Outcome.APPLIED,
                    )
            except IntegrityError:
                outcome = DeliveryOutcome.DUPLICATE
            else:
                if self.subscription.ordered:
                    outcome = self.apply_in_sequence(envelope, inbox, delivery)
                else:
                    self.handle_with_faults(envelope, delivery)
                    outcome = DeliveryOutcome.APPLIED
            self.record_attempt(envelope, delivery, outcome, started=started)
        return outcome

    def handle_with_faults(self, envelope: Envelope, delivery: Delivery) -> None:
        self.faults.before_handle(delivery.attempt)
        self.handle(envelope)

    def apply_in_sequence(self, envelope: Envelope, inbox: InboxMessage, delivery: Delivery) -> str:
        """Skip what is older than the subject's progress; apply the rest and move the progress on.

        The progress row is locked, so two events of one subject are never applied concurrently.
        """
        progress_rows = SubjectProgress.objects.using(self.database)
        progress_rows.bulk_create(
            [SubjectProgress(consumer=self.subscription.name, source=envelope.source, subject=envelope.subject)],
            ignore_conflicts=True,
        )
        progress = progress_rows.select_for_update().get(
            consumer=self.subscription.name, source=envelope.source, subject=envelope.subject
        )
        if envelope.sequence <= progress.last_sequence:
            inbox.outcome = InboxMessage.Outcome.STALE
            inbox.save(update_fields=["outcome"])
            return DeliveryOutcome.STALE
        early = envelope.sequence > progress.last_sequence + 1
        self.handle_with_faults(envelope, delivery)
        progress.last_sequence = envelope.sequence
        progress.save(update_fields=["last_sequence"])
        if early:
            inbox.outcome = InboxMessage.Outcome.EARLY
            inbox.save(update_fields=["outcome"])
            return DeliveryOutcome.EARLY
        return DeliveryOutcome.APPLIED

    def retry_or_give_up(self, delivery: Delivery, envelope: Envelope, error: Exception, reader: SubscriptionReader) -> str:
        attempt = delivery.attempt
        reason = _describe(error)
        if attempt >= settings.CONSUMER_MAX_ATTEMPTS:
            self.give_up(delivery, "retries_exhausted", f"after {attempt} attempts: {reason}", envelope=envelope)
            return DeliveryOutcome.DEAD_LETTERED
        delay = retry_delay_seconds(attempt)
        # Scheduled before the attempt is recorded: if the database is what failed, the retry must not depend on it.
        reader.retry_later(delivery, attempt=attempt, delay_seconds=delay)
        self.record_failure(envelope, delivery, DeliveryOutcome.RETRY, reason=type(error).__name__, detail=f"retry in {delay:.1f}s: {reason}")
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

    def record_attempt(self, envelope: Envelope, delivery: Delivery, outcome: str, *, started: float, reason: str = "", detail: str = "") -> None:
        DeliveryAttempt.objects.using(self.database).create(
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
        )

    def record_failure(self, envelope: Envelope, delivery: Delivery, outcome: str, *, reason: str, detail: str) -> None:
        try:
            self.record_attempt(envelope, delivery, outcome, started=time.monotonic(), reason=reason, detail=detail)
        except DatabaseError as error:
            # The database is down: the retry is already scheduled on the broker; only the record is lost.
            logger.warning("could not record a failed attempt: %s", error)


def _describe(error: Exception, *, with_traceback: bool = False) -> str:
    text = f"{type(error).__name__}: {error}"
    if with_traceback:
        text += "\n" + "".join(traceback.format_exception(error))[-4000:]
    return text
