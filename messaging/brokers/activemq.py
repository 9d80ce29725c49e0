"""The ActiveMQ Classic (5.x) adapter, over STOMP with stomp.py; the broker is set up by scripts/activemq/.

How our topology maps onto ActiveMQ's own features:

- the events topic is the virtual topic `VirtualTopic.shop.events`; each subscriber consumes its own
  queue `Consumer.<subscription>.VirtualTopic.shop.events`, which the broker fills with a copy of
  every event that matches the queue's selector (`selectorAware`);
- binding patterns (`shop.purchase.confirmed.#`) become that selector, over headers we put on every
  event: `rkn` (how many words the routing key has), `rk0`, `rk1`, ... (its words) and `rkr0`,
  `rkr1`, ... (its words from the end, so a pattern may go on after its `#`);
- the broker's selector cache plugin remembers each queue's selector while nobody consumes it, so
  `declare` (subscribe once, unsubscribe) is enough for a queue to start collecting events;
- an event no subscriber's selector matches lands in `Consumer.shop-events-unrouted...`, whose
  selector is NOT(every subscriber's selector): our `shop.events.unrouted`;
- the redelivery plugin redelivers a NACKed message after a delay and, past the delivery limit,
  moves it to `DLQ.<queue>`, which the reader drains next to the queue.

`?namespace=ns` in the URL puts `ns.` before `VirtualTopic`, so a test's topic, queues and DLQs
are its own (`ns.VirtualTopic.shop.events`, `Consumer.shipping.ns.VirtualTopic.shop.events`).
"""
from __future__ import annotations

import itertools
import queue
import threading
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

import stomp
from stomp.exception import StompException

from messaging.brokers.base import (
    ATTEMPT_HEADER,
    BrokerConfigurationError,
    BrokerError,
    Capabilities,
    Delivery,
    EventBus,
    OutgoingMessage,
    PublishResult,
    QueueDepth,
    SubscriptionReader,
)
from messaging.events import EXCHANGE_NAME
from messaging.topology import QUEUE_DELIVERY_LIMIT

DEFAULT_PORT = 61613
ROUTING_KEY_HEADER = "eventshop-routing-key"
WORD_COUNT_HEADER = "rkn"
UNROUTED_QUEUE_NAME = f"{EXCHANGE_NAME}.unrouted"
UNROUTED_CONSUMER = "shop-events-unrouted"
# What the broker or STOMP puts on a message: never part of Delivery.headers nor of a retried copy.
BROKER_HEADERS = frozenset({
    "ack", "content-length", "content-type", "destination", "expires", "message-id", "original-destination",
    "persistent", "priority", "redelivered", "redeliveryDelay", "scheduledJobId", "subscription", "timestamp",
    "type", "JMSXGroupID", "JMSXGroupSeq", "AMQ_SCHEDULED_DELAY", "AMQ_SCHEDULED_ID", "dlqDeliveryFailureCause",
    "originalExpiration", ROUTING_KEY_HEADER, WORD_COUNT_HEADER,
})


def _is_routing_header(name: str) -> bool:
    return name.removeprefix("rkr").removeprefix("rk").isdigit()


def routing_headers(routing_key: str) -> dict[str, str]:
    """The headers a selector can route on: word count, words, and words from the end."""
    words = routing_key.split(".") if routing_key else []
    headers = {ROUTING_KEY_HEADER: routing_key, WORD_COUNT_HEADER: str(len(words))}
    for position, word in enumerate(words):
        headers[f"rk{position}"] = word
    for position, word in enumerate(reversed(words)):
        headers[f"rkr{position}"] = word
    return headers


def _literal(word: str) -> str:
    return "'" + word.replace("'", "''") + "'"


def binding_selector(pattern: str) -> str:
    """A JMS selector matching exactly the routing keys an AMQP topic binding `pattern` matches
    (`*` one word, `#` zero or more). Patterns with more than one `#` cannot be expressed over
    word positions and are refused."""
    words = pattern.split(".") if pattern else []
    if words.count("#") > 1:
        raise BrokerConfigurationError(f"binding {pattern!r}: ActiveMQ selectors support at most one '#'")
    if "#" in words:
        split = words.index("#")
        head, tail = words[:split], words[split + 1:]
        terms = [f"{WORD_COUNT_HEADER} >= {len(head) + len(tail)}"]
    else:
        head, tail = words, []
        terms = [f"{WORD_COUNT_HEADER} = {len(words)}"]
    terms += [f"rk{position} = {_literal(word)}" for position, word in enumerate(head) if word != "*"]
    terms += [f"rkr{position} = {_literal(word)}" for position, word in enumerate(reversed(tail)) if word != "*"]
    return " AND ".join(terms)


def bindings_selector(patterns: Iterable[str]) -> str:
    selectors = [binding_selector(pattern) for pattern in patterns]
    if not selectors:
        return f"{WORD_COUNT_HEADER} < 0"  # binds nothing
    return " OR ".join(f"({selector})" for selector in selectors)


def unrouted_selector(subscriber_selectors: Iterable[str]) -> str:
    selectors = list(subscriber_selectors)
    if not selectors:
        return f"{WORD_COUNT_HEADER} >= 0"  # never no selector: the cache would keep "TRUE" for good
    return "NOT (" + " OR ".join(f"({selector})" for selector in selectors) + ")"


@dataclass(frozen=True)
class Destinations:
    """Our names (`shipping`, `shipping.events`) -> ActiveMQ destinations, within a namespace."""

    namespace: str = ""

    @property
    def virtual_topic(self) -> str:
        return (f"{self.namespace}." if self.namespace else "") + f"VirtualTopic.{EXCHANGE_NAME}"

    @property
    def topic(self) -> str:
        return f"/topic/{self.virtual_topic}"

    def consumer_queue(self, consumer: str) -> str:
        return f"Consumer.{consumer}.{self.virtual_topic}"

    def dead_letter_queue(self, consumer: str) -> str:
        return f"DLQ.{self.consumer_queue(consumer)}"


class _Link(stomp.ConnectionListener):
    """One STOMP connection: frames pushed by stomp.py's receiver thread are buffered here, receipts
    are waited for, and a lost connection or an ERROR frame becomes a BrokerError for the caller."""

    def __init__(self, url: str, connect_timeout: float):
        parts = urlsplit(url)
        self.description = EventBus.describe_url(url)
        self.messages: queue.Queue = queue.Queue()
        self._condition = threading.Condition()
        self._receipts: set[str] = set()
        self._connected = False
        self.failure: str = ""
        self._ids = itertools.count(1)
        self.connection = stomp.Connection12(
            [(parts.hostname or "127.0.0.1", parts.port or DEFAULT_PORT)],
            reconnect_attempts_max=1, timeout=connect_timeout, auto_decode=False, heartbeats=(10000, 10000),
        )
        self.connection.set_listener("eventshop", self)
        try:
            self.connection.connect(username=unquote(parts.username) if parts.username else None,
                                    passcode=unquote(parts.password) if parts.password else None, wait=False)
        except (StompException, OSError) as error:
            raise BrokerError(f"ActiveMQ at {self.description} is unreachable: {error!r}") from error
        with self._condition:
            self._condition.wait_for(lambda: self._connected or self.failure, timeout=connect_timeout)
        if not self._connected:
            self.close()
            raise BrokerError(f"ActiveMQ at {self.description} did not accept a connection within "
                              f"{connect_timeout}s{': ' + self.failure if self.failure else ''}")

    # --- stomp.py's listener callbacks (its receiver thread) ---

    def on_connected(self, frame) -> None:
        with self._condition:
            self._connected = True
            self._condition.notify_all()

    def on_message(self, frame) -> None:
        self.messages.put(frame)

    def on_receipt(self, frame) -> None:
        with self._condition:
            self._receipts.add(frame.headers.get("receipt-id", ""))
            self._condition.notify_all()

    def on_error(self, frame) -> None:
        body = frame.body.decode("utf-8", "replace") if isinstance(frame.body, bytes) else str(frame.body)
        with self._condition:
            self.failure = f"{frame.headers.get('message', 'ERROR frame')}: {body.strip()[:500]}"
            self._condition.notify_all()

    def on_disconnected(self) -> None:
        with self._condition:
            self._connected = False
            self.failure = self.failure or "connection lost"
            self._condition.notify_all()
        self.messages.put(None)  # wakes a waiting fetch

    # --- used by the bus and the readers ---

    def new_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids)}"

    def check_alive(self) -> None:
        if self.failure or not self._connected:
            raise BrokerError(f"ActiveMQ at {self.description}: {self.failure or 'not connected'}")

    def call(self, method: str, *args, **kwargs) -> None:
        """A stomp.py command, its errors wrapped."""
        self.check_alive()
        try:
            getattr(self.connection, method)(*args, **kwargs)
        except (StompException, OSError) as error:
            raise BrokerError(f"ActiveMQ at {self.description}: {method} failed: {error!r}") from error

    def wait_receipts(self, receipt_ids: Sequence[str], timeout: float) -> set[str]:
        """The receipts among `receipt_ids` that arrived within `timeout`; raises BrokerError if the
        connection failed before all came."""
        wanted = set(receipt_ids)
        with self._condition:
            self._condition.wait_for(lambda: wanted <= self._receipts or self.failure, timeout=timeout)
            arrived = wanted & self._receipts
            self._receipts -= arrived
            if arrived != wanted:
                raise _PartialReceipts(arrived, BrokerError(
                    f"ActiveMQ at {self.description}: {self.failure or f'no receipt within {timeout}s'}"))
        return arrived

    def request(self, method: str, *args, timeout: float, **kwargs) -> None:
        """A command with a receipt, waited for."""
        # stomp.py takes `receipt` as a keyword for every command (a header for most of them).
        receipt = self.new_id("receipt")
        self.call(method, *args, receipt=receipt, **kwargs)
        try:
            self.wait_receipts([receipt], timeout)
        except _PartialReceipts as partial:
            raise partial.error from None

    def close(self) -> None:
        try:
            if self.connection.is_connected():
                self.connection.disconnect()
        except (StompException, OSError):
            pass
        self._connected = False
        self.failure = self.failure or "closed"


class _PartialReceipts(Exception):
    def __init__(self, arrived: set[str], error: BrokerError):
        super().__init__(str(error))
        self.arrived = arrived
        self.error = error


class ActiveMQBus(EventBus):
    """ActiveMQ Classic over STOMP: virtual topic, selector-routed consumer queues, broker redelivery."""

    RECEIPT_TIMEOUT_SECONDS = 10.0  # a healthy broker answers in milliseconds; a stuck one is an error
    STATISTICS_TIMEOUT_SECONDS = 5.0

    capabilities = Capabilities(
        name="ActiveMQ Classic",
        publish_confirmation="Every SEND is persistent and asks for a RECEIPT, which ActiveMQ sends once the "
                             "message is stored; a batch is sent pipelined and the receipts awaited together.",
        pub_sub="One virtual topic (VirtualTopic.shop.events); the broker copies each event into every "
                "subscriber's queue Consumer.<subscriber>.VirtualTopic.shop.events, created by declare.",
        pattern_routing="Binding patterns become JMS selectors over routing-key headers (word count, words, "
                        "words from the end) on selector-aware virtual-topic queues; '*' and one '#' per "
                        "pattern, with AMQP's meaning; the selector cache keeps them while consumers are away.",
        delivery_count="Not exact: STOMP shows only 'redelivered', so redeliveries is 1 for any redelivery and 0 "
                       "otherwise; the broker counts internally for its limit, our header counts handled failures, and the runtime counts "
                       "crash redeliveries by message id in its database.",
        delivery_limit=f"The redelivery plugin redelivers a NACKed message with backoff and dead-letters it after "
                       f"{QUEUE_DELIVERY_LIMIT} deliveries; a consumer that dies without settling gets the message "
                       f"back at once, never dead-lettered by the broker for that alone: the runtime counts those "
                       f"redeliveries by message id and dead-letters past the same limit.",
        dead_letters="One DLQ per queue (DLQ.<queue>, individualDeadLetterStrategy), consumed next to the queue "
                     "and handed over with broker_dead_reason='delivery_limit'.",
        delayed_delivery="Native: a retried copy carries AMQ_SCHEDULED_DELAY and the broker's scheduler puts it "
                         "back on the subscriber's queue after the delay, without holding up the others.",
        per_key_ordering="Message groups: JMSXGroupID is the ordering key, so one consumer at a time gets a key's "
                         "events, in order, across competing consumers.",
        unrouted_events="Kept: a queue whose selector is NOT(every subscriber's selector) collects them as "
                        "shop.events.unrouted.",
        priorities="The broker supports JMS priorities 0-9; Eventshop sends everything at the default 4.",
        high_availability="Not set up here (one broker, KahaDB on local disk); ActiveMQ offers shared-store "
                          "master/slave and networks of brokers.",
        consumer_count=True,
    )

    def __init__(self, url: str, *, connect_timeout: float = 5.0):
        query = parse_qs(urlsplit(url).query)
        namespace = query.get("namespace", [""])[0]
        if any(character in namespace for character in ".*> /"):
            raise BrokerConfigurationError(f"namespace {namespace!r}: one destination word, please (no . * > /)")
        self.destinations = Destinations(namespace)
        self.link = _Link(url, connect_timeout)
        self.url = url
        self.connect_timeout = connect_timeout
        # Our queue names -> the consumer name ActiveMQ knows the queue by; filled by declare.
        self.consumers: dict[str, str] = {UNROUTED_QUEUE_NAME: UNROUTED_CONSUMER}
        self.selectors: dict[str, str] = {}

    # --- topology ---

    def declare(self, subscriptions: Iterable) -> None:
        for subscription in subscriptions:
            if any(character in subscription.name for character in ".*> /"):
                raise BrokerConfigurationError(f"subscription {subscription.name!r}: one destination word, please")
            self.consumers[subscription.queue_name] = subscription.name
            self.selectors[subscription.name] = bindings_selector(subscription.bindings())
        unrouted = unrouted_selector(self.selectors.values())
        # Subscribing creates the queue and leaves its selector in the broker's selector cache, so the
        # queue collects its events from now on. Prefetch 0: nothing is dispatched to this passing
        # consumer, so no message already queued is marked redelivered by its departure.
        for consumer, selector in [*self.selectors.items(), (UNROUTED_CONSUMER, unrouted)]:
            subscription_id = self.link.new_id("declare")
            self.link.call("subscribe", f"/queue/{self.destinations.consumer_queue(consumer)}", id=subscription_id,
                           ack="client-individual", headers={"selector": selector, "activemq.prefetchSize": "0"})
            self.link.request("unsubscribe", id=subscription_id, timeout=self.RECEIPT_TIMEOUT_SECONDS)

    def consumer_for(self, queue_name: str) -> str:
        try:
            return self.consumers[queue_name]
        except KeyError:
            raise BrokerConfigurationError(f"queue {queue_name!r} is not declared on this bus") from None

    # --- publishing ---

    def publish(self, messages: Sequence[OutgoingMessage]) -> PublishResult:
        return self._send_batch(self.destinations.topic, messages)

    def send_to_queue(self, queue_name: str, messages: Sequence[OutgoingMessage]) -> PublishResult:
        try:
            consumer = self.consumer_for(queue_name)
        except BrokerConfigurationError as error:
            return PublishResult(confirmed=(), error=error)
        return self._send_batch(f"/queue/{self.destinations.consumer_queue(consumer)}", messages)

    def _send_batch(self, destination: str, messages: Sequence[OutgoingMessage]) -> PublishResult:
        sent: list[tuple[str, str]] = []  # (receipt, message_id), in order
        error: Exception | None = None
        try:
            for message in messages:
                receipt = self.link.new_id("publish")
                self.link.call("send", destination, message.body, content_type=message.content_type,
                               headers={**_outgoing_headers(message), "receipt": receipt})
                sent.append((receipt, message.message_id))
        except BrokerError as failure:
            error = failure
        try:
            arrived = self.link.wait_receipts([receipt for receipt, _ in sent], self.RECEIPT_TIMEOUT_SECONDS)
        except _PartialReceipts as partial:
            arrived, error = partial.arrived, error or partial.error
        return PublishResult(confirmed=tuple(message_id for receipt, message_id in sent if receipt in arrived),
                             error=error)

    # --- consuming ---

    def subscribe(self, subscription, *, prefetch: int) -> SubscriptionReader:
        if subscription.queue_name not in self.consumers:
            self.declare([subscription])
        return ActiveMQReader(
            _Link(self.url, self.connect_timeout), self.destinations, subscription.name,
            self.selectors[subscription.name], prefetch=prefetch, receipt_timeout=self.RECEIPT_TIMEOUT_SECONDS,
        )

    # --- operations ---

    def queue_depths(self, queue_names: Sequence[str]) -> list[QueueDepth]:
        """Asks the statistics plugin about each queue (ActiveMQ.Statistics.Destination.<queue>), then
        about the broker: replies come in order, so the broker's marks the end of the answers (a
        queue the broker does not know gets no reply)."""
        wanted: dict[str, str] = {}  # qualified ActiveMQ name -> our name
        for name in queue_names:
            if name in self.consumers:
                wanted[f"queue://{self.destinations.consumer_queue(self.consumers[name])}"] = name
            elif name.endswith(".dead") and name.removesuffix(".dead") in self.consumers:
                consumer = self.consumers[name.removesuffix(".dead")]
                wanted[f"queue://{self.destinations.dead_letter_queue(consumer)}"] = name
        reply_to = f"/temp-queue/{self.link.new_id('statistics')}"
        subscription_id = self.link.new_id("statistics")
        self.link.call("subscribe", reply_to, id=subscription_id, ack="auto",
                       headers={"transformation": "jms-map-xml"})
        try:
            for qualified in wanted:
                self.link.call("send", f"/queue/ActiveMQ.Statistics.Destination.{qualified.removeprefix('queue://')}",
                               b"", headers={"reply-to": reply_to})
            self.link.call("send", "/queue/ActiveMQ.Statistics.Broker", b"", headers={"reply-to": reply_to})
            answers = self._statistics_replies(subscription_id)
        finally:
            self.link.request("unsubscribe", id=subscription_id, timeout=self.RECEIPT_TIMEOUT_SECONDS)
        depths = {}
        for statistics in answers:
            name = wanted.get(str(statistics.get("destinationName")))
            if name is not None:
                in_flight = int(statistics.get("inflightCount", 0))
                depths[name] = QueueDepth(name, max(int(statistics["size"]) - in_flight, 0),
                                          int(statistics["consumerCount"]))
        for name, qualified_name in ((name, qualified) for qualified, name in wanted.items()):
            if name not in depths and name.endswith(".dead"):
                # ActiveMQ creates a dead-letter queue with its first message: until then it is empty.
                depths[name] = QueueDepth(name, 0, 0)
        return [depths.get(name, QueueDepth(name, None, None)) for name in queue_names]

    def _statistics_replies(self, subscription_id: str) -> list[dict]:
        answers = []
        deadline = time.monotonic() + self.STATISTICS_TIMEOUT_SECONDS
        while True:
            remaining = deadline - time.monotonic()
            self.link.check_alive()
            if remaining <= 0:
                raise BrokerError(f"ActiveMQ at {self.link.description}: no statistics within "
                                  f"{self.STATISTICS_TIMEOUT_SECONDS}s (is the statisticsBrokerPlugin enabled?)")
            try:
                frame = self.link.messages.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            if frame is None or frame.headers.get("subscription") != subscription_id:
                continue
            statistics = _map_message(frame.body)
            if "destinationName" not in statistics:
                return answers  # the broker's own statistics: the last reply
            answers.append(statistics)

    def check(self) -> None:
        self.queue_depths([])

    def close(self) -> None:
        self.link.close()


class ActiveMQReader(SubscriptionReader):
    """One subscriber's consumer queue and its DLQ, on a connection of its own (closing it gives
    every unsettled message back)."""

    MAIN = "main"
    DEAD = "dead"

    def __init__(self, link: _Link, destinations: Destinations, consumer: str, selector: str, *,
                 prefetch: int, receipt_timeout: float):
        self.link = link
        self.destinations = destinations
        self.consumer = consumer
        self.selector = selector
        self.prefetch = prefetch
        self.receipt_timeout = receipt_timeout
        try:
            self._subscribe_main()
            self.link.call("subscribe", f"/queue/{destinations.dead_letter_queue(consumer)}", id=self.DEAD,
                           ack="client-individual", headers={"activemq.prefetchSize": str(prefetch)})
        except BrokerError:
            self.link.close()
            raise

    def _subscribe_main(self) -> None:
        # The same selector as declared: the selector cache keeps one per queue, the latest.
        self.link.request("subscribe", f"/queue/{self.destinations.consumer_queue(self.consumer)}", id=self.MAIN,
                          ack="client-individual", timeout=self.receipt_timeout,
                          headers={"selector": self.selector, "activemq.prefetchSize": str(self.prefetch)})

    def fetch(self, max_messages: int, timeout: float) -> list[Delivery]:
        self.link.check_alive()
        frames = []
        try:
            frames.append(self.link.messages.get(timeout=timeout))
            while len(frames) < max_messages:
                frames.append(self.link.messages.get_nowait())
        except queue.Empty:
            pass
        if None in frames:
            self.link.check_alive()  # the connection went: BrokerError (unsettled messages go back)
        return [_delivery(frame) for frame in frames if frame is not None]

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        self._settle("ack", deliveries)

    def requeue(self, deliveries: Sequence[Delivery]) -> None:
        # A NACK is a "poison ack" to ActiveMQ: the redelivery plugin puts the message back after its
        # delay (1 s first) and counts it towards the delivery limit, like a quorum queue's requeue.
        self._settle("nack", deliveries)

    def _settle(self, method: str, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        for delivery in deliveries[:-1]:
            self.link.call(method, delivery.handle)
        # One receipt for the batch: the broker handles a connection's frames in order.
        self.link.request(method, deliveries[-1].handle, timeout=self.receipt_timeout)

    def retry_later(self, delivery: Delivery, *, attempt: int, delay_seconds: float) -> None:
        headers = {key: str(value) for key, value in delivery.headers.items() if key not in BROKER_HEADERS}
        headers.update(routing_headers(delivery.routing_key))
        headers.update({ATTEMPT_HEADER: str(attempt), "persistent": "true",
                        "AMQ_SCHEDULED_DELAY": str(max(int(delay_seconds * 1000), 0))})
        self.link.request("send", f"/queue/{self.destinations.consumer_queue(self.consumer)}", delivery.body,
                          content_type=delivery.content_type, headers=headers, timeout=self.receipt_timeout)
        self.ack([delivery])

    def pause(self) -> None:
        self.link.request("unsubscribe", id=self.MAIN, timeout=self.receipt_timeout)
        # What was buffered for the cancelled subscription is the broker's again: drop our copies.
        buffered = []
        while True:
            try:
                buffered.append(self.link.messages.get_nowait())
            except queue.Empty:
                break
        for frame in buffered:
            if frame is None or frame.headers.get("subscription") != self.MAIN:
                self.link.messages.put(frame)

    def resume(self) -> None:
        self._subscribe_main()

    def close(self) -> None:
        self.link.close()


def _outgoing_headers(message: OutgoingMessage) -> dict[str, str]:
    headers = {key: str(value) for key, value in message.headers.items() if key not in BROKER_HEADERS}
    headers.update(routing_headers(message.routing_key))
    headers["persistent"] = "true"
    if message.ordering_key:
        headers["JMSXGroupID"] = message.ordering_key
    return headers


def _delivery(frame) -> Delivery:
    headers = frame.headers
    dead = headers.get("subscription") == ActiveMQReader.DEAD
    return Delivery(
        body=frame.body if isinstance(frame.body, bytes) else str(frame.body).encode(),
        content_type=headers.get("content-type", ""),
        routing_key=headers.get(ROUTING_KEY_HEADER, ""),
        headers={key: value for key, value in headers.items()
                 if key not in BROKER_HEADERS and not _is_routing_header(key)},
        redeliveries=1 if headers.get("redelivered") == "true" else 0,
        redeliveries_exact=False,
        message_id=headers.get("message-id", ""),
        broker_dead_reason="delivery_limit" if dead else "",
        handle=headers["ack"],
    )


def _map_message(body: bytes) -> dict:
    """A map message as ActiveMQ renders it for STOMP with `transformation: jms-map-xml`."""
    values = {}
    for entry in ElementTree.fromstring(body).findall("entry"):
        key, value = list(entry)[:2]
        values[key.text] = value.text
    return values
