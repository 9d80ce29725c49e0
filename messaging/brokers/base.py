"""The event-bus port: the few operations everything above `messaging/brokers/` uses.

Everything broker-agnostic (the outbox and relay, the inbox, the sequence check, the retry policy,
the dead-letter store, fault injection, the dashboards) talks to an `EventBus`; each broker has one
adapter module beside this one that implements it with the broker's own features. What a broker
can and cannot do is declared as data (`Capabilities`), so the docs and the comparison read it from
the code.

The port speaks in batches from the start: `publish` takes many messages and says which the broker
confirmed; `fetch` hands over up to N deliveries; `ack` settles many at once.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

# Our own count of handled failures, carried on a retried copy (brokers count only crashes, if at all).
ATTEMPT_HEADER = "x-eventshop-failed-attempts"


class BrokerError(Exception):
    """The broker could not be reached or failed midway. Adapters wrap their client's errors in it,
    so the runtime can tell "wait and reconnect" from a bug."""


class BrokerConfigurationError(ValueError):
    """BROKER_URL names no adapter, or is malformed: a person must fix the setting."""


@dataclass(frozen=True)
class OutgoingMessage:
    """One event to publish, already serialized (the outbox row's body, byte for byte)."""

    message_id: str  # the CloudEvents id: brokers that deduplicate (SQS FIFO) use it
    routing_key: str  # e.g. shop.purchase.confirmed.us.large; adapters route by it natively
    body: bytes
    content_type: str
    headers: dict[str, Any] = field(default_factory=dict)  # ce-type, correlation-id, ...
    # Events with the same key keep their order where the broker can (message groups, FIFO): the subject.
    ordering_key: str = ""


@dataclass(frozen=True)
class PublishResult:
    """Which messages the broker confirmed (by message_id), and the error that stopped the rest.

    Adapters never raise from `publish` for a broker fault: a caller inside a transaction must still
    mark exactly what was confirmed. Unconfirmed messages stay unsent and are published again later.
    """

    confirmed: tuple[str, ...]
    error: Exception | None = None


@dataclass
class Delivery:
    """One message as it came off a subscriber's queue, before any parsing."""

    body: bytes
    content_type: str
    routing_key: str
    headers: dict
    # How often the broker delivered this very message before without a settlement (consumer crashes).
    redeliveries: int = 0
    # False where the broker only says "redelivered" (STOMP): `redeliveries` is then 1 for any number
    # of redeliveries, and the runtime counts them itself by `message_id` (the broker's own id,
    # stable across redeliveries).
    redeliveries_exact: bool = True
    message_id: str = ""
    # Set when the broker itself dead-lettered the message (its delivery limit) and this is the copy
    # from the broker's dead-letter queue: the runtime moves it into the dead-letter store.
    broker_dead_reason: str = ""
    # The adapter's handle for settling it (delivery tag, receipt handle, STOMP ack id).
    handle: Any = None

    @property
    def attempt(self) -> int:
        """1 for the first try; counts handled failures (our header) and crashes (the broker's count)."""
        try:
            failed = int(self.headers.get(ATTEMPT_HEADER, 0) or 0)
        except (TypeError, ValueError):
            failed = 0
        return 1 + failed + self.redeliveries


@dataclass(frozen=True)
class QueueDepth:
    queue: str
    ready: int | None  # None: the broker does not know the queue (yet)
    consumers: int | None  # None: the broker cannot tell


@dataclass(frozen=True)
class Capabilities:
    """What a broker gives natively; where it gives nothing, what Eventshop does instead (`how`)."""

    name: str  # "RabbitMQ", "Amazon SQS + SNS", ...
    publish_confirmation: str
    pub_sub: str
    pattern_routing: str
    delivery_count: str
    delivery_limit: str
    dead_letters: str
    delayed_delivery: str
    per_key_ordering: str
    unrouted_events: str
    priorities: str
    high_availability: str
    consumer_count: bool  # whether queue_depths can report consumers


class SubscriptionReader(ABC):
    """One subscriber's queue (and the broker's dead-letter queue for it), opened by `EventBus.subscribe`.

    Every fetched delivery is settled exactly once: `ack`, `retry_later` or `requeue`. A delivery
    never settled (the process died) comes back after the broker's own timeout, counted in
    `redeliveries` where the broker counts.
    """

    @abstractmethod
    def fetch(self, max_messages: int, timeout: float) -> list[Delivery]:
        """Up to `max_messages` deliveries; waits at most `timeout` seconds for the first one."""

    @abstractmethod
    def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Done with them for good (applied, skipped, or kept in the dead-letter store)."""

    @abstractmethod
    def retry_later(self, delivery: Delivery, *, attempt: int, delay_seconds: float) -> None:
        """Have the message come back after `delay_seconds` with `attempt` failed attempts counted,
        without holding up the messages behind it; settles `delivery`."""

    @abstractmethod
    def requeue(self, deliveries: Sequence[Delivery]) -> None:
        """Give them back at once, unprocessed (our database is down)."""

    def pause(self) -> None:
        """Stop taking new messages (push-based brokers cancel the subscription). Default: nothing,
        for pull-based brokers: not fetching is pausing."""

    def resume(self) -> None:
        """Undo `pause`."""

    @abstractmethod
    def close(self) -> None:
        """Release the subscription; unsettled deliveries go back to the queue."""


class EventBus(ABC):
    """A connection to one broker. Not thread-safe: one per thread."""

    capabilities: ClassVar[Capabilities]

    @abstractmethod
    def declare(self, subscriptions: Iterable) -> None:
        """Create (idempotently) the topic, each subscriber's queue, its bindings, its dead-letter
        queue, and whatever the broker needs for delays and unrouted events."""

    @abstractmethod
    def publish(self, messages: Sequence[OutgoingMessage]) -> PublishResult:
        """Publish to the events topic, routed by each message's routing key."""

    @abstractmethod
    def send_to_queue(self, queue_name: str, messages: Sequence[OutgoingMessage]) -> PublishResult:
        """Put messages straight onto one subscriber's queue (a dead letter replayed)."""

    @abstractmethod
    def subscribe(self, subscription, *, prefetch: int) -> SubscriptionReader:
        """Open `subscription`'s queue for consuming."""

    @abstractmethod
    def queue_depths(self, queue_names: Sequence[str]) -> list[QueueDepth]:
        """Ready messages (and consumers, where the broker tells) per queue, right now."""

    def check(self) -> None:
        """Raise BrokerError unless the broker answers now (readiness, operators waiting)."""
        self.queue_depths([])

    @abstractmethod
    def close(self) -> None:
        """Close the connection; safe to call twice or after a failure."""

    def __enter__(self) -> EventBus:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @staticmethod
    def describe_url(url: str) -> str:
        """The URL without its password, for messages a person reads."""
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":**@")
            return parts._replace(netloc=netloc).geturl()
        return url
