"""The consume loop: one subscription's queue, acks after commit, pause, heartbeats, injected faults.

It talks to the broker only through the event-bus port (`messaging/brokers/`), so it is the same
loop on every broker.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import time

from django.db import DatabaseError, close_old_connections
from django.utils import timezone

from messaging.brokers import BrokerError, Delivery, EventBus, SubscriptionReader
from messaging.connecting import BrokerReconnector
from messaging.consumer.processing import MessageProcessor
from messaging.faults import FaultPlan
from messaging.models import ConsumerState, DeliveryOutcome
from messaging.operations import consumer_faults_update
from messaging.outbox import outbox_publish_after_commit_batched
from messaging.topology import Subscription

logger = logging.getLogger(__name__)

# Outcomes after which the delivery is done with: the runtime acks it (a retry settled it already).
ACKED_OUTCOMES = frozenset({DeliveryOutcome.APPLIED, DeliveryOutcome.EARLY, DeliveryOutcome.DUPLICATE,
                            DeliveryOutcome.STALE, DeliveryOutcome.DEAD_LETTERED})


class EventConsumer(MessageProcessor):
    """Consumes one subscription's queue until stopped (`manage.py consume <name>`)."""

    # Deliveries handled in one transaction, each in its own savepoint: one commit, one publish of
    # their events (pipelined confirms) and one round of acks per batch instead of per message.
    # A batch is whatever has arrived, up to this many: a quiet queue's single message goes at once.
    FETCH_BATCH = 50
    PREFETCH = 100  # the next batch is on the wire while this one commits; a crash redelivers at most this many
    HEARTBEAT_SECONDS = 5.0  # how often the dashboard hears from us, and how often we check "pause"
    FETCH_TIMEOUT_SECONDS = 1.0

    def __init__(self, subscription: Subscription):
        super().__init__(subscription)
        self.should_stop = False
        self.paused = False
        self.held: list[Delivery] = []  # deliveries held back by an injected reordering
        self._next_heartbeat = 0.0

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._request_stop)
        signal.signal(signal.SIGINT, self._request_stop)
        reconnector = BrokerReconnector(self.subscription.name, should_stop=lambda: self.should_stop)
        while not self.should_stop:
            bus = reconnector.connect()  # raises BrokerUnreachable only before the first connection
            if bus is None:
                break
            try:
                self.consume_with(bus, on_settled=reconnector.reset)
            except BrokerError as error:
                logger.warning("%s lost the broker (%s); reconnecting in %.0fs", self.subscription.name, error,
                               reconnector.backoff)
                self.held = []  # unsettled: the broker gives them back
                reconnector.pause()
            finally:
                bus.close()

    def consume_with(self, bus: EventBus, *, on_settled=lambda: None) -> None:
        reader = bus.subscribe(self.subscription, prefetch=self.PREFETCH)
        logger.info("%s consuming %s", self.subscription.name, self.subscription.queue_name)
        try:
            while not self.should_stop:
                self.tick()
                if self.paused:
                    # Pausing stops taking messages; what was taken goes back to the queue.
                    reader.pause()
                    time.sleep(self.FETCH_TIMEOUT_SECONDS)
                    continue
                reader.resume()
                deliveries = reader.fetch(self.FETCH_BATCH, self.FETCH_TIMEOUT_SECONDS)
                if not deliveries:
                    self.release_held(reader)  # a quiet queue: do not sit on held deliveries
                    continue
                self.on_deliveries(deliveries, reader)
                on_settled()
        finally:
            reader.close()

    def on_deliveries(self, deliveries: list[Delivery], reader: SubscriptionReader) -> None:
        ready = []
        for delivery in deliveries:
            if self.faults.reorder_window > 1 and not delivery.broker_dead_reason:
                self.held.append(delivery)
                if len(self.held) >= self.faults.reorder_window:
                    held, self.held = self.held, []
                    ready += reversed(held)
            else:
                ready.append(delivery)
        self.handle_batch(ready, reader)

    def release_held(self, reader: SubscriptionReader) -> None:
        held, self.held = self.held, []
        self.handle_batch(list(reversed(held)), reader)

    def handle_batch(self, deliveries: list[Delivery], reader: SubscriptionReader) -> None:
        """Process deliveries in one transaction and settle them: acks only after it committed and
        the events it recorded were published (or left to the relay)."""
        if not deliveries:
            return
        from_broker_dead_queue = [delivery for delivery in deliveries if delivery.broker_dead_reason]
        regular = [delivery for delivery in deliveries if not delivery.broker_dead_reason]
        retries = _RetriesSeen(reader)
        try:
            for delivery in from_broker_dead_queue:
                self.move_broker_dead_letter(delivery)
            with outbox_publish_after_commit_batched():
                outcomes = self.process_batch(regular, retries, duplicate=self.faults.should_duplicate)
        except DatabaseError as error:
            # The database failed the batch: nothing of it is committed. Put back what is unsettled and slow down.
            logger.error("%s cannot reach its database (%s); requeueing %d message(s)", self.subscription.name,
                         error, len(deliveries) - len(retries.settled))
            close_old_connections()
            reader.requeue([delivery for delivery in deliveries if not any(delivery is settled for settled in retries.settled)])
            time.sleep(1.0)
            return
        done = from_broker_dead_queue + [delivery for delivery, outcome in zip(regular, outcomes)
                                         if outcome in ACKED_OUTCOMES]  # the rest were retries: settled already
        if self.faults.crash_after_commit and {DeliveryOutcome.APPLIED, DeliveryOutcome.EARLY} & set(outcomes):
            self.crash_before_ack()
        if done:
            reader.ack(done)

    def move_broker_dead_letter(self, delivery: Delivery) -> str:
        """The broker gave up on it (its delivery limit): keep it in our store with the others."""
        reason = delivery.broker_dead_reason
        self.give_up(delivery, "delivery_limit" if reason == "delivery_limit" else f"broker_{reason}",
                     f"dead-lettered by the broker ({reason}) from {self.subscription.queue_name}",
                     envelope=None)
        return DeliveryOutcome.DEAD_LETTERED

    def crash_before_ack(self) -> None:
        """The injected crash: the effect is committed, the ack never sent; the broker redelivers."""
        self.faults.crash_after_commit = False
        # Only this fault is reset: others an operator set meanwhile stay as they are.
        consumer_faults_update(consumer=self.subscription.name, crash_after_commit=False)
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
            self.paused = state.is_paused
            self.faults = FaultPlan.from_dict(state.faults)
        except DatabaseError as error:
            logger.warning("%s could not write its heartbeat: %s", self.subscription.name, error)

    def _request_stop(self, signum, frame) -> None:
        self.should_stop = True


class _RetriesSeen:
    """The reader as the processor sees it: remembers which deliveries a retry settled already."""

    def __init__(self, reader: SubscriptionReader):
        self.reader = reader
        self.settled: list[Delivery] = []

    def retry_later(self, delivery: Delivery, *, attempt: int, delay_seconds: float) -> None:
        self.reader.retry_later(delivery, attempt=attempt, delay_seconds=delay_seconds)
        self.settled.append(delivery)
