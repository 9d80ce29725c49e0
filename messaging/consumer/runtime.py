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
from messaging.topology import Subscription

logger = logging.getLogger(__name__)

# Outcomes after which the delivery is done with: the runtime acks it (a retry settled it already).
ACKED_OUTCOMES = frozenset({DeliveryOutcome.APPLIED, DeliveryOutcome.EARLY, DeliveryOutcome.DUPLICATE,
                            DeliveryOutcome.STALE, DeliveryOutcome.DEAD_LETTERED})


class EventConsumer(MessageProcessor):
    """Consumes one subscription's queue until stopped (`manage.py consume <name>`)."""

    PREFETCH = 20  # keeps the handler fed while acks travel; a crash redelivers at most this many
    FETCH_BATCH = 20  # deliveries taken from the reader at once (handled one transaction each)
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
                for delivery in deliveries:
                    self.on_delivery(delivery, reader)
                on_settled()
        finally:
            reader.close()

    def on_delivery(self, delivery: Delivery, reader: SubscriptionReader) -> None:
        if self.faults.reorder_window > 1 and not delivery.broker_dead_reason:
            self.held.append(delivery)
            if len(self.held) >= self.faults.reorder_window:
                self.release_held(reader)
            return
        self.handle_delivery(delivery, reader)

    def release_held(self, reader: SubscriptionReader) -> None:
        held, self.held = self.held, []
        for delivery in reversed(held):
            self.handle_delivery(delivery, reader)

    def handle_delivery(self, delivery: Delivery, reader: SubscriptionReader) -> None:
        """Process one delivery and settle it: ack only after its transaction committed."""
        try:
            if delivery.broker_dead_reason:
                outcome = self.move_broker_dead_letter(delivery)
            else:
                outcome = self.process(delivery, reader)
                if outcome in ACKED_OUTCOMES - {DeliveryOutcome.DEAD_LETTERED} and self.faults.should_duplicate():
                    self.process(delivery, reader)  # the injected redelivery: must be a duplicate
        except DatabaseError as error:
            # Even the dead-letter store is unreachable: put the message back and slow down.
            logger.error("%s cannot reach its database (%s); requeueing", self.subscription.name, error)
            close_old_connections()
            reader.requeue([delivery])
            time.sleep(1.0)
            return
        if outcome not in ACKED_OUTCOMES:
            return  # a retry: `retry_later` settled it
        if self.faults.crash_after_commit and outcome in (DeliveryOutcome.APPLIED, DeliveryOutcome.EARLY):
            self.crash_before_ack()
        reader.ack([delivery])

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
