"""A fake event bus for the consume loop: a subscription reader that hands out scripted batches and
writes down every call in order, so a test can see what was acked, retried or requeued, and when.

It implements the port (messaging.brokers.base) and nothing of ours is patched: the runtime under
test is the real `EventConsumer`.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

from messaging.brokers import Delivery, EventBus, PublishResult, SubscriptionReader


class ScriptedReader(SubscriptionReader):
    """Fetch hands out `batches` one per call (an exception in their place is raised), then nothing. After `turns` fetches or pauses it asks
    the consumer to stop, so `consume_with` returns. `on_ack(deliveries)` runs at ack time, before
    the ack is written down: a test looks at the database from there."""

    def __init__(self, batches: Sequence[Sequence[Delivery]], *, turns: int,
                 on_ack: Callable[[Sequence[Delivery]], object] | None = None):
        self.batches = [batch if isinstance(batch, Exception) else list(batch) for batch in batches]
        self.turns = turns
        self.on_ack = on_ack
        self.consumer = None  # set by FakeBus.subscribe's caller through the bus
        self.calls: list[tuple] = []
        self.seen_at_ack: list[object] = []

    def _turn(self) -> None:
        self.turns -= 1
        if self.turns <= 0:
            self.consumer.should_stop = True

    def fetch(self, max_messages: int, timeout: float) -> list[Delivery]:
        self.calls.append(("fetch", max_messages))
        self._turn()
        batch = self.batches.pop(0) if self.batches else []
        if isinstance(batch, Exception):
            raise batch  # the broker went away mid-fetch
        return batch[:max_messages]

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        if self.on_ack is not None:
            self.seen_at_ack.append(self.on_ack(deliveries))
        self.calls.append(("ack", *deliveries))

    def retry_later(self, delivery: Delivery, *, attempt: int, delay_seconds: float) -> None:
        self.calls.append(("retry_later", delivery, attempt, delay_seconds))

    def requeue(self, deliveries: Sequence[Delivery]) -> None:
        self.calls.append(("requeue", *deliveries))

    def pause(self) -> None:
        self.calls.append(("pause",))
        self._turn()

    def resume(self) -> None:
        self.calls.append(("resume",))

    def close(self) -> None:
        self.calls.append(("close",))

    def names(self) -> list[str]:
        """The calls by name only, in order (fetch, resume and close included)."""
        return [call[0] for call in self.calls]

    def settled(self) -> list[tuple]:
        """The calls that settle a delivery (ack, retry_later, requeue), in order."""
        return [call for call in self.calls if call[0] in {"ack", "retry_later", "requeue"}]


class FakeBus(EventBus):
    """A bus whose only working part is `subscribe`: it hands out the one scripted reader."""

    def __init__(self, reader: ScriptedReader, consumer):
        self.reader = reader
        reader.consumer = consumer
        self.subscribed: list[tuple] = []

    def subscribe(self, subscription, *, prefetch: int) -> ScriptedReader:
        self.subscribed.append((subscription.name, prefetch))
        return self.reader

    def declare(self, subscriptions) -> None:
        raise NotImplementedError

    def publish(self, messages) -> PublishResult:
        raise NotImplementedError

    def send_to_queue(self, queue_name, messages) -> PublishResult:
        raise NotImplementedError

    def queue_depths(self, queue_names):
        raise NotImplementedError

    def close(self) -> None:
        pass
