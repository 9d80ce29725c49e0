"""The consume loop: one subscription's queue, acks after commit, pause, heartbeats, injected faults."""
from __future__ import annotations

import logging
import os
import signal
import socket
import time

from django.db import DatabaseError, close_old_connections
from django.utils import timezone
from kombu import Connection, Consumer
from kombu.message import Message

from messaging.broker import broker_connection
from messaging.consumer.delivery import Delivery
from messaging.consumer.processing import MessageProcessor
from messaging.faults import FaultPlan
from messaging.models import ConsumerState, DeliveryOutcome
from messaging.operations import consumer_faults_update
from messaging.retries import RetryScheduler, retry_scheduler_for
from messaging.topology import Subscription, topology_declare

logger = logging.getLogger(__name__)


class EventConsumer(MessageProcessor):
    """Consumes one subscription's queue until stopped (`manage.py consume <name>`)."""

    PREFETCH = 20  # keeps the handler fed while acks travel; a crash redelivers at most this many
    HEARTBEAT_SECONDS = 5.0  # how often the dashboard hears from us, and how often we check "pause"
    DRAIN_TIMEOUT_SECONDS = 1.0
    RECONNECT_MAX_SECONDS = 30.0

    def __init__(self, subscription: Subscription, *, connection_factory=broker_connection):
        super().__init__(subscription)
        self.connection_factory = connection_factory
        self.should_stop = False
        self.paused = False
        self.held: list[Message] = []  # messages held back by an injected reordering
        self._next_heartbeat = 0.0

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
