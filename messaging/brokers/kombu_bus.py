"""What the RabbitMQ and embedded adapters share: kombu's AMQP model (exchanges, queues, bindings).

The topology: one durable topic exchange for the events, one durable queue per subscriber bound
by the subscriber's routing-key patterns, a dead queue per subscriber for what the broker itself
gives up on, and an alternate exchange that keeps events no queue is bound for. Each subclass adds
what its broker does differently: queue arguments, how a retry waits, what depth it can report.
"""
from __future__ import annotations

import socket
import time
from collections import deque
from collections.abc import Iterable, Sequence
from contextlib import contextmanager, nullcontext

from amqp.exceptions import AMQPError
from kombu import Connection, Consumer, Exchange, Producer, Queue
from kombu.exceptions import KombuError
from kombu.message import Message

from messaging.brokers.base import (
    ATTEMPT_HEADER,
    BrokerError,
    Delivery,
    EventBus,
    OutgoingMessage,
    PublishResult,
    QueueDepth,
    SubscriptionReader,
)
from messaging.events import EXCHANGE_NAME
from messaging.topology import UNROUTED_QUEUE_NAME, Subscription

EVENTS_EXCHANGE = Exchange(
    EXCHANGE_NAME,
    type="topic",
    durable=True,
    # An event no queue is bound for is not dropped silently: the broker hands it to this exchange.
    arguments={"alternate-exchange": f"{EXCHANGE_NAME}.unrouted"},
)
UNROUTED_EXCHANGE = Exchange(f"{EXCHANGE_NAME}.unrouted", type="fanout", durable=True)
UNROUTED_QUEUE = Queue(UNROUTED_QUEUE_NAME, exchange=UNROUTED_EXCHANGE, routing_key="", durable=True)
# Where RabbitMQ puts a message that exceeded a queue's delivery limit (a consumer died on it
# again and again); each consumer drains its own dead queue into its dead-letter store.
DEAD_LETTER_EXCHANGE = Exchange(f"{EXCHANGE_NAME}.dead", type="direct", durable=True)
DEFAULT_EXCHANGE = Exchange("")
# A copy sent straight to a queue (a retry, a replay) travels under the queue's name: this header
# keeps the event's own routing key, and deliveries report that one.
ROUTING_KEY_HEADER = "x-eventshop-routing-key"
# Headers the broker adds on its way; a copy we send again must not carry them forward.
BROKER_HEADERS = frozenset({
    "x-death", "x-delivery-count", "x-first-death-exchange", "x-first-death-queue", "x-first-death-reason",
    "x-last-death-exchange", "x-last-death-queue", "x-last-death-reason",
})


class KombuBus(EventBus):
    """An EventBus over one kombu connection. Subclasses set the transport options and the retry."""

    HEARTBEAT_SECONDS = 0
    # Publish a batch, then wait for all its publisher confirms (RabbitMQ); else one publish at a time.
    PIPELINED_CONFIRMS = False
    CONFIRM_TIMEOUT_SECONDS = 10.0

    def __init__(self, url: str, *, connect_timeout: float = 5.0):
        self.url = url
        self.connection = Connection(url, connect_timeout=connect_timeout, heartbeat=self.HEARTBEAT_SECONDS,
                                     transport_options=self.transport_options())
        self.errors = (OSError, KombuError, AMQPError, *self.connection.connection_errors,
                       *self.connection.channel_errors)
        self.events_exchange_declared = False
        self.confirming_producer: Producer | None = None
        self.published_count = 0  # publishes on the confirming channel: the broker's delivery tags
        with self.translated_errors("reach"):
            # Fail at once: the caller decides how long to wait and how to say so.
            self.connection.ensure_connection(max_retries=0)
            self.producer = Producer(self.connection.channel())

    # --- subclasses ----------------------------------------------------------------------------

    def transport_options(self) -> dict:
        return {}

    def subscriber_queue(self, subscription: Subscription) -> Queue:
        return Queue(subscription.queue_name, durable=True)

    def declare_extra(self, subscription: Subscription, channel) -> None:
        """Anything else a subscriber needs on this broker (delay queues)."""

    def send_retry(self, producer: Producer, reader: KombuReader, delivery: Delivery, *, attempt: int,
                   delay_seconds: float) -> None:
        raise NotImplementedError

    def consumer_count(self, declared) -> int | None:
        return None

    def one_commit(self, channel):
        """Where the broker can, settle many deliveries in one write (the embedded broker's file)."""
        return nullcontext()

    # --- the port ------------------------------------------------------------------------------

    def declare(self, subscriptions: Iterable[Subscription]) -> None:
        with self.translated_errors("declare the topology on"):
            channel = self.connection.default_channel
            for exchange in (UNROUTED_EXCHANGE, EVENTS_EXCHANGE, DEAD_LETTER_EXCHANGE):
                exchange(channel).declare()
            UNROUTED_QUEUE(channel).declare()
            for subscription in subscriptions:
                dead_queue(subscription)(channel).declare()
                queue = self.subscriber_queue(subscription)(channel)
                queue.declare()
                for binding_key in subscription.bindings():
                    queue.bind_to(exchange=EVENTS_EXCHANGE.name, routing_key=binding_key)
                self.declare_extra(subscription, channel)

    def publish(self, messages: Sequence[OutgoingMessage]) -> PublishResult:
        if not self.events_exchange_declared:
            # The embedded broker routes in the publisher: it must know the exchange's alternate
            # exchange even when this bus declared nothing else (RabbitMQ: an idempotent no-op).
            try:
                with self.translated_errors("declare the events exchange on"):
                    for exchange in (UNROUTED_EXCHANGE, EVENTS_EXCHANGE):
                        exchange(self.connection.default_channel).declare()
            except BrokerError as error:
                return PublishResult((), error)
            self.events_exchange_declared = True
        return self._send(messages, exchange=EVENTS_EXCHANGE, routing_key=None)

    def send_to_queue(self, queue_name: str, messages: Sequence[OutgoingMessage]) -> PublishResult:
        return self._send(messages, exchange=DEFAULT_EXCHANGE, routing_key=queue_name)

    def _send(self, messages: Sequence[OutgoingMessage], *, exchange: Exchange, routing_key: str | None) -> PublishResult:
        if self.PIPELINED_CONFIRMS:
            return self._send_pipelined(messages, exchange=exchange, routing_key=routing_key)
        confirmed: list[str] = []
        for message in messages:
            try:
                # The embedded broker: this returns once the row is committed to its file.
                self._publish_one(self.producer, message, exchange=exchange, routing_key=routing_key)
            except self.errors as error:
                return PublishResult(tuple(confirmed), BrokerError(f"{type(error).__name__}: {error}"))
            confirmed.append(message.message_id)
        return PublishResult(tuple(confirmed))

    def _publish_one(self, producer: Producer, message: OutgoingMessage, *, exchange: Exchange,
                     routing_key: str | None) -> None:
        producer.publish(
            message.body,
            exchange=exchange,
            routing_key=message.routing_key if routing_key is None else routing_key,
            content_type=message.content_type,
            content_encoding="utf-8" if message.content_type else "binary",
            delivery_mode=2,
            message_id=message.message_id,
            headers=_outgoing_headers(message, direct_to_queue=routing_key is not None),
            retry=False,
        )

    def _publish_now(self, channel, message: OutgoingMessage, *, exchange: Exchange, routing_key: str | None) -> None:
        """`basic_publish` on the channel itself: kombu's Producer.publish does the same with more CPU
        per message, which is what a relay publishing thousands a second spends."""
        channel.basic_publish(
            channel.prepare_message(
                message.body,
                content_type=message.content_type,
                content_encoding="utf-8" if message.content_type else "binary",
                headers=_outgoing_headers(message, direct_to_queue=routing_key is not None),
                properties={"delivery_mode": 2, "message_id": message.message_id},
            ),
            exchange=exchange.name,
            routing_key=message.routing_key if routing_key is None else routing_key,
        )

    def _send_pipelined(self, messages: Sequence[OutgoingMessage], *, exchange: Exchange,
                        routing_key: str | None) -> PublishResult:
        """Publish the whole batch without waiting, then wait for all its confirms at once.

        The channel is in confirm mode, so the broker numbers our publishes 1, 2, 3... and acks
        (or nacks) each, or many at once (`multiple`). What it acked is confirmed; a nack, a lost
        connection or no answer within CONFIRM_TIMEOUT_SECONDS leaves the rest unconfirmed, to be
        published again: the same guarantee as a wait per message, without a round trip each.
        """
        channel = self._confirming_channel()
        tags: dict[int, str] = {}  # delivery tag -> message id, until the broker settles it
        acked: set[str] = set()
        nacked: list[str] = []

        def settle(tag: int, multiple: bool, into) -> None:
            for settled in ([t for t in tags if t <= tag] if multiple else [tag] if tag in tags else []):
                into(tags.pop(settled))

        on_ack = lambda tag, multiple: settle(tag, multiple, acked.add)  # noqa: E731
        on_nack = lambda tag, multiple: settle(tag, multiple, nacked.append)  # noqa: E731
        channel.events["basic_ack"].add(on_ack)
        channel.events["basic_nack"].add(on_nack)
        error: Exception | None = None
        try:
            with self._one_write():
                for message in messages:
                    self.published_count += 1
                    tags[self.published_count] = message.message_id
                    self._publish_now(channel, message, exchange=exchange, routing_key=routing_key)
            deadline = time.monotonic() + self.CONFIRM_TIMEOUT_SECONDS
            while tags and time.monotonic() < deadline:
                try:
                    self.connection.drain_events(timeout=max(deadline - time.monotonic(), 0.001))
                except socket.timeout:
                    pass
            if tags:
                error = BrokerError(f"no publisher confirm within {self.CONFIRM_TIMEOUT_SECONDS:.0f}s for "
                                    f"{len(tags)} of {len(messages)} messages")
        except self.errors as failure:
            error = BrokerError(f"{type(failure).__name__}: {failure}")
        finally:
            channel.events["basic_ack"].discard(on_ack)
            channel.events["basic_nack"].discard(on_nack)
        if error is not None or tags:
            self.confirming_producer = None  # unsettled tags would confuse the next batch: a fresh channel
        if nacked and error is None:
            error = BrokerError(f"the broker nacked {len(nacked)} of {len(messages)} messages")
        return PublishResult(tuple(m.message_id for m in messages if m.message_id in acked), error)

    @contextmanager
    def _one_write(self):
        """The batch's frames go to the socket in one write instead of one per message (py-amqp
        writes each publish at once; a system call per message was a fifth of the relay's time).
        Nothing is written if building a frame fails."""
        transport = getattr(getattr(self.connection, "connection", None), "transport", None)
        if transport is None or not hasattr(transport, "_write"):
            yield
            return
        frames, socket_write = bytearray(), transport._write
        transport._write = frames.extend  # copies each frame out of py-amqp's reused buffer
        try:
            yield
        finally:
            transport._write = socket_write
        socket_write(bytes(frames))

    def _confirming_channel(self):
        """A channel of our own in confirm mode whose publishes do not wait (py-amqp's `confirm_publish`
        makes `basic_publish` wait for each confirm; that is undone here and the acks collected instead)."""
        if self.confirming_producer is None:
            with self.translated_errors("open a publishing channel on"):
                channel = self.connection.channel()
                channel.basic_publish = channel._basic_publish
                channel.confirm_select()
            self.confirming_producer = Producer(channel)
            self.published_count = 0
        return self.confirming_producer.channel

    def subscribe(self, subscription: Subscription, *, prefetch: int) -> KombuReader:
        with self.translated_errors("subscribe on"):
            return KombuReader(self, subscription, prefetch=prefetch)

    def queue_depths(self, queue_names: Sequence[str]) -> list[QueueDepth]:
        depths = []
        with self.translated_errors("read queue depths from"):
            channel = self.connection.channel()
            for name in queue_names:
                try:
                    declared = channel.queue_declare(name, passive=True)
                except self.connection.channel_errors:
                    # A failed passive declare closes an AMQP channel: open a fresh one for the next.
                    channel = self.connection.channel()
                    depths.append(QueueDepth(name, None, None))
                    continue
                depths.append(QueueDepth(name, declared.message_count, self.consumer_count(declared)))
            channel.close()
        return depths

    def close(self) -> None:
        try:
            self.connection.release()
        except self.errors:
            pass  # already broken: dropping it is all we want

    def translated_errors(self, doing: str):
        return _TranslatedErrors(self, doing)


class _TranslatedErrors:
    """`with bus.translated_errors("publish to"):` turns kombu/amqp/socket errors into BrokerError."""

    def __init__(self, bus: KombuBus, doing: str):
        self.bus, self.doing = bus, doing

    def __enter__(self):
        return self

    def __exit__(self, exc_type, error, traceback):
        if error is not None and isinstance(error, self.bus.errors):
            raise BrokerError(f"cannot {self.doing} the broker at {EventBus.describe_url(self.bus.url)}: "
                              f"{type(error).__name__}: {error}") from error
        return False


def dead_queue(subscription: Subscription) -> Queue:
    return Queue(subscription.dead_queue_name, exchange=DEAD_LETTER_EXCHANGE,
                 routing_key=subscription.dead_queue_name, durable=True)


class KombuReader(SubscriptionReader):
    """A subscriber's queue and its dead queue on one channel each; deliveries are buffered by the
    consumer callbacks and handed out by `fetch`, so no work ever runs inside a kombu callback."""

    def __init__(self, bus: KombuBus, subscription: Subscription, *, prefetch: int):
        self.bus = bus
        self.subscription = subscription
        self.buffer: deque[Delivery] = deque()
        self.channel = bus.connection.channel()
        self.consumer = Consumer(self.channel, queues=[bus.subscriber_queue(subscription)],
                                 on_message=self._buffer, prefetch_count=prefetch)
        self.dead_consumer = Consumer(bus.connection.channel(), queues=[dead_queue(subscription)],
                                      on_message=self._buffer_dead, prefetch_count=prefetch)
        self.publish_producer = Producer(bus.connection.channel())
        self.consumer.consume()
        self.dead_consumer.consume()
        self.consuming = True

    def _buffer(self, message: Message) -> None:
        self.buffer.append(_delivery(message))

    def _buffer_dead(self, message: Message) -> None:
        delivery = _delivery(message)
        delivery.broker_dead_reason = str(delivery.headers.get("x-first-death-reason", "delivery_limit"))
        self.buffer.append(delivery)

    def fetch(self, max_messages: int, timeout: float) -> list[Delivery]:
        with self.bus.translated_errors("receive from"):
            if not self.buffer:
                self._drain(timeout)
            # Take what else is already on the wire, without waiting for more.
            while self.buffer and len(self.buffer) < max_messages and self._drain(0.001):
                pass
        taken = []
        while self.buffer and len(taken) < max_messages:
            taken.append(self.buffer.popleft())
        return taken

    def _drain(self, timeout: float) -> bool:
        try:
            self.bus.connection.drain_events(timeout=timeout)
        except socket.timeout:
            self.bus.connection.heartbeat_check()
            return False
        return True

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        with self.bus.translated_errors("acknowledge on"), self.bus.one_commit(self.channel):
            for delivery in deliveries:
                delivery.handle.ack()

    def requeue(self, deliveries: Sequence[Delivery]) -> None:
        with self.bus.translated_errors("requeue on"):
            for delivery in deliveries:
                delivery.handle.requeue()

    def retry_later(self, delivery: Delivery, *, attempt: int, delay_seconds: float) -> None:
        with self.bus.translated_errors("schedule a retry on"):
            # The copy first, then the ack: a crash between the two leaves a duplicate, never a loss.
            self.bus.send_retry(self.publish_producer, self, delivery, attempt=attempt, delay_seconds=delay_seconds)
            delivery.handle.ack()

    def pause(self) -> None:
        if self.consuming:
            with self.bus.translated_errors("pause on"):
                self.consumer.cancel()
                # What was buffered goes back at once for another consumer (or for us after resume).
                self.requeue([self.buffer.popleft() for _ in range(len(self.buffer))])
            self.consuming = False

    def resume(self) -> None:
        if not self.consuming:
            with self.bus.translated_errors("resume on"):
                self.consumer.consume()
            self.consuming = True

    def close(self) -> None:
        try:
            self.consumer.cancel()
            self.dead_consumer.cancel()
            self.channel.close()
        except self.bus.errors:
            pass  # the connection is gone: the broker returns unsettled messages itself


def retry_headers(delivery: Delivery, attempt: int) -> dict:
    headers = {key: value for key, value in delivery.headers.items() if key not in BROKER_HEADERS}
    headers[ATTEMPT_HEADER] = attempt
    if delivery.routing_key:
        headers[ROUTING_KEY_HEADER] = delivery.routing_key
    return headers


def _outgoing_headers(message: OutgoingMessage, *, direct_to_queue: bool) -> dict:
    headers = {key: value for key, value in message.headers.items() if key not in BROKER_HEADERS}
    if direct_to_queue and message.routing_key:
        headers[ROUTING_KEY_HEADER] = message.routing_key
    return headers


def _routing_key(message: Message, headers: dict) -> str:
    """The event's own routing key: carried by a copy sent to a queue, or, for a message RabbitMQ
    dead-lettered, the key it was first published with (x-death); else the one it arrived with."""
    if headers.get(ROUTING_KEY_HEADER):
        return str(headers.pop(ROUTING_KEY_HEADER))
    deaths = headers.get("x-death") or []
    if deaths and isinstance(deaths[0], dict) and deaths[0].get("routing-keys"):
        return str(deaths[0]["routing-keys"][0])
    return message.delivery_info.get("routing_key", "")


def _delivery(message: Message) -> Delivery:
    body = message.body if isinstance(message.body, bytes) else str(message.body).encode()
    headers = dict(message.headers or {})
    routing_key = _routing_key(message, headers)
    return Delivery(
        body=body,
        content_type=message.content_type or "",
        routing_key=routing_key,
        headers=headers,
        redeliveries=int(headers.get("x-delivery-count", 0) or 0),
        handle=message,
    )
