"""The consumer runtime (docs/guarantees.md explains it): at-least-once delivery in, exactly-once effects out.

For each message, in one database transaction: record the event id in the inbox (a unique
constraint turns a redelivery into a skip), check the subject's sequence (stale events are skipped,
early ones applied), run the handler, record the attempt. Ack only after the commit. A named
transient failure is retried later with backoff; anything else that can never succeed is
dead-lettered with its reason. No message crashes the consumer, and none is acked silently.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import time
import traceback
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError, close_old_connections, transaction
from django.utils import timezone
from kombu import Connection, Consumer
from kombu.message import Message

from messaging.broker import broker_connection
from messaging.dead_letters import dead_letter_record
from messaging.events import CONTENT_TYPE, DATA_CONTENT_TYPE, Envelope, InvalidEvent
from messaging.faults import FaultPlan, InjectedFailure, consumer_faults_set
from messaging.models import ConsumerState, DeliveryAttempt, DeliveryOutcome, InboxMessage, SubjectProgress
from messaging.outbox import current_correlation_id
from messaging.retries import ATTEMPT_HEADER, RetryScheduler, retry_delay_seconds, retry_scheduler_for
from messaging.topology import QUEUE_DELIVERY_LIMIT, Subscription, topology_declare

logger = logging.getLogger(__name__)


class TransientError(Exception):
    """Raised by a handler for a failure that may pass (a downstream timeout): retried with backoff."""


# Failures worth retrying: the database was unavailable, a race another attempt will not lose, or
# a failure an operator injected to watch retries work.
TRANSIENT_ERRORS = (TransientError, OperationalError, InterfaceError, IntegrityError, InjectedFailure)
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


class EventConsumer:
    """Consumes one subscription's queue. Subclass and override `handle` to change dispatch."""

    PREFETCH = 20  # keeps the handler fed while acks travel; a crash redelivers at most this many
    HEARTBEAT_SECONDS = 5.0  # how often the dashboard hears from us, and how often we check "pause"
    DRAIN_TIMEOUT_SECONDS = 1.0
    RECONNECT_MAX_SECONDS = 30.0

    def __init__(self, subscription: Subscription, *, connection_factory=broker_connection):
        self.subscription = subscription
        self.database = subscription.database
        self.handlers = subscription.handlers()
        self.connection_factory = connection_factory
        self.should_stop = False
        self.paused = False
        self.faults = FaultPlan()
        self.held: list[Message] = []  # messages held back by an injected reordering
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self._next_heartbeat = 0.0

    # --- the one method a handler author cares about ---------------------------------------

    def handle(self, envelope: Envelope) -> None:
        self.handlers[envelope.type](envelope)

    # --- per message ---------------------------------------------------------------------------

    def process(self, delivery: Delivery, retry_scheduler: RetryScheduler) -> str:
        """Handle one delivery and return its outcome; the caller acks after this returns."""
        started = time.monotonic()
        if delivery.redeliveries >= QUEUE_DELIVERY_LIMIT:
            # Consumers died on it again and again (RabbitMQ's quorum queue dead-letters it first;
            # this is the same limit on the embedded broker). Without a limit it would loop forever.
            self.give_up(delivery, "delivery_limit", f"delivered {delivery.redeliveries + 1} times without an ack",
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
            outcome = self.retry_or_give_up(delivery, envelope, error, retry_scheduler)
        except InvalidEvent as error:
            self.give_up(delivery, error.reason, error.detail, envelope=envelope)
            outcome = DeliveryOutcome.DEAD_LETTERED
        except Exception as error:  # a bug or bad data: retrying cannot help, so keep it for a human
            self.give_up(delivery, "handler_error", _describe(error, with_traceback=True), envelope=envelope)
            outcome = DeliveryOutcome.DEAD_LETTERED
        finally:
            current_correlation_id.reset(token)
        return outcome

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

    def retry_or_give_up(self, delivery: Delivery, envelope: Envelope, error: Exception, retry_scheduler: RetryScheduler) -> str:
        attempt = delivery.attempt
        reason = _describe(error)
        if attempt >= settings.CONSUMER_MAX_ATTEMPTS:
            self.give_up(delivery, "retries_exhausted", f"after {attempt} attempts: {reason}", envelope=envelope)
            return DeliveryOutcome.DEAD_LETTERED
        delay = retry_delay_seconds(attempt)
        # Scheduled before the attempt is recorded: if the database is what failed, the retry must not depend on it.
        retry_scheduler.schedule(delivery, attempt=attempt, delay_seconds=delay)
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

    # --- the loop ------------------------------------------------------------------------------

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._request_stop)
        signal.signal(signal.SIGINT, self._request_stop)
        backoff = 1.0
        while not self.should_stop:
            connection = self.connection_factory(confirms=True)
            try:
                self.consume_from(connection)
                backoff = 1.0
            except (OSError, *connection.connection_errors) as error:
                logger.warning("%s lost the broker (%s); reconnecting in %.0fs", self.subscription.name, error, backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, self.RECONNECT_MAX_SECONDS)
            finally:
                connection.release()

    def consume_from(self, connection: Connection) -> None:
        connection.ensure_connection(max_retries=1)
        topology_declare(connection)
        with self.connection_factory(confirms=True) as publishing_connection:
            self.consume_with(connection, retry_scheduler_for(self.subscription, publishing_connection))

    def consume_with(self, connection: Connection, retry_scheduler: RetryScheduler) -> None:
        channel = connection.channel()
        consumer = Consumer(
            channel,
            queues=[self.subscription.queue()],
            on_message=lambda message: self.on_message(message, retry_scheduler),
            prefetch_count=self.PREFETCH,
        )
        # RabbitMQ moves a message past its delivery limit to this queue; keep it with the others.
        dead_consumer = Consumer(connection.channel(), queues=[self.subscription.dead_queue()],
                                 on_message=self.on_dead_message, prefetch_count=self.PREFETCH)
        dead_consumer.consume()
        logger.info("%s consuming %s", self.subscription.name, self.subscription.queue_name)
        consuming = False
        while not self.should_stop:
            self.tick()
            if self.paused == consuming:
                # Pausing cancels the broker subscription: unacked messages go back to the queue.
                (consumer.cancel if consuming else consumer.consume)()
                consuming = not consuming
            if not consuming:
                time.sleep(self.DRAIN_TIMEOUT_SECONDS)
                continue
            try:
                connection.drain_events(timeout=self.DRAIN_TIMEOUT_SECONDS)
            except socket.timeout:
                connection.heartbeat_check()
                self.release_held(retry_scheduler)  # a quiet queue: do not sit on held messages
        if consuming:
            consumer.cancel()
        dead_consumer.cancel()
        channel.close()

    def on_message(self, message: Message, retry_scheduler: RetryScheduler) -> None:
        if self.faults.reorder_window > 1:
            self.held.append(message)
            if len(self.held) >= self.faults.reorder_window:
                self.release_held(retry_scheduler)
            return
        self.handle_message(message, retry_scheduler)

    def release_held(self, retry_scheduler: RetryScheduler) -> None:
        held, self.held = self.held, []
        for message in reversed(held):
            self.handle_message(message, retry_scheduler)

    def handle_message(self, message: Message, retry_scheduler: RetryScheduler) -> None:
        delivery = Delivery.from_message(message)
        try:
            outcome = self.process(delivery, retry_scheduler)
            if self.faults.should_duplicate():
                self.process(delivery, retry_scheduler)  # the injected redelivery: must be a duplicate
        except DatabaseError as error:
            # Even the dead-letter store is unreachable: put the message back and slow down.
            logger.error("%s cannot reach its database (%s); requeueing", self.subscription.name, error)
            close_old_connections()
            message.requeue()
            time.sleep(1.0)
            return
        if self.faults.crash_after_commit and outcome in (DeliveryOutcome.APPLIED, DeliveryOutcome.EARLY):
            self.crash_before_ack()
        message.ack()

    def on_dead_message(self, message: Message) -> None:
        delivery = Delivery.from_message(message)
        reason = str(delivery.headers.get("x-first-death-reason", "delivery_limit"))
        self.give_up(delivery, "delivery_limit" if reason == "delivery_limit" else f"broker_{reason}",
                     f"dead-lettered by the broker ({reason}) from {delivery.headers.get('x-first-death-queue', '?')}",
                     envelope=None)
        message.ack()

    def crash_before_ack(self) -> None:
        """The injected crash: the effect is committed, the ack never sent; the broker redelivers."""
        self.faults.crash_after_commit = False
        consumer_faults_set(consumer=self.subscription.name, plan=self.faults)
        logger.warning("%s: injected crash after commit, before ack", self.subscription.name)
        os.kill(os.getpid(), signal.SIGKILL)

    def tick(self) -> None:
        now = time.monotonic()
        if now < self._next_heartbeat:
            return
        self._next_heartbeat = now + self.HEARTBEAT_SECONDS
        try:
            close_old_connections()
            state, _ = ConsumerState.objects.using(self.database).get_or_create(consumer=self.subscription.name)
            state.last_heartbeat_at = timezone.now()
            state.process_id = os.getpid()
            state.hostname = socket.gethostname()
            state.save(update_fields=["last_heartbeat_at", "process_id", "hostname"])
            self.paused = state.paused or bool(state.paused_until and state.paused_until > timezone.now())
            self.faults = FaultPlan.from_dict(state.faults)
        except DatabaseError as error:
            logger.warning("%s could not write its heartbeat: %s", self.subscription.name, error)

    def _request_stop(self, signum, frame) -> None:
        self.should_stop = True


def _describe(error: Exception, *, with_traceback: bool = False) -> str:
    text = f"{type(error).__name__}: {error}"
    if with_traceback:
        text += "\n" + "".join(traceback.format_exception(error))[-4000:]
    return text
