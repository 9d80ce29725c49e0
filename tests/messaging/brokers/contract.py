"""The port's contract, as tests every adapter must pass (RabbitMQ, embedded, ActiveMQ, SQS + SNS).

An adapter's test module provides a `broker` fixture (a `BrokerUnderTest`) and imports the tests
below with `from tests.messaging.brokers.contract import *`; pytest collects them there, once per
adapter. What a broker does differently is declared on its `BrokerUnderTest`, not tested by name.
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from messaging.brokers import ATTEMPT_HEADER, EventBus, OutgoingMessage, PublishResult
from messaging.topology import UNROUTED_QUEUE_NAME, Subscription

__all__ = []  # filled in at the end: every test function, for the adapters' star imports

SHIPPING = Subscription(name="shipping", queue_name="shipping.events", database="shipping", handlers_path="",
                        binding_keys=("shop.purchase.confirmed.#", "shop.order.cancelled.#"))
LARGE_ORDERS = Subscription(name="loyalty-bonus", queue_name="loyalty.large-orders", database="loyalty",
                            handlers_path="", binding_keys=("shop.purchase.confirmed.*.large",))


@dataclass
class BrokerUnderTest:
    """One adapter on a broker of its own (a fresh vhost, a fresh file): `open()` connects a bus."""

    connect: Callable[[], EventBus]
    consumer_count: bool  # queue_depths reports consumers
    opened: list[EventBus] = field(default_factory=list)

    def open(self, *, declare: bool = True) -> EventBus:
        bus = self.connect()
        self.opened.append(bus)
        if declare:
            bus.declare([SHIPPING, LARGE_ORDERS])
        return bus

    def close_all(self) -> None:
        for bus in self.opened:
            bus.close()


def event(routing_key: str, *, number: int = 0, **headers) -> OutgoingMessage:
    return OutgoingMessage(message_id=f"{routing_key}/{number}/{uuid.uuid4()}", routing_key=routing_key,
                           body=f'{{"key": "{routing_key}", "n": {number}}}'.encode(),
                           content_type="application/cloudevents+json",
                           headers={"ce-type": routing_key, "correlation-id": f"c-{number}", **headers})


def fetch_until(reader, count: int, *, within: float = 5.0, settle: bool = True) -> list:
    """Fetch (and ack, if `settle`) until `count` deliveries came, or the deadline passed."""
    deliveries = []
    deadline = time.monotonic() + within
    while len(deliveries) < count and time.monotonic() < deadline:
        batch = reader.fetch(count - len(deliveries), 0.2)
        if settle and batch:
            reader.ack(batch)
        deliveries.extend(batch)
    return deliveries


def nothing_more(reader, within: float = 0.5) -> bool:
    return reader.fetch(10, within) == []


def ready(bus, *queues) -> list:
    return [depth.ready for depth in bus.queue_depths(list(queues))]


def test_each_subscriber_gets_exactly_the_events_its_bindings_match(broker):
    bus = broker.open()
    keys = ["shop.purchase.confirmed",  # `#` takes zero words too
            "shop.purchase.confirmed.us.large", "shop.purchase.confirmed.gb.small",
            "shop.purchase.confirmed.large",  # one word short of `*.large`
            "shop.purchase.confirmed.us.x.large",  # one word too many for `*.large`
            "shop.order.cancelled.o-1", "shop.purchase.refunded.us.large"]
    messages = [event(key, number=index) for index, key in enumerate(keys)]
    assert bus.publish(messages).error is None

    shipped = fetch_until(bus.subscribe(SHIPPING, prefetch=10), 6)
    large = fetch_until(bus.subscribe(LARGE_ORDERS, prefetch=10), 1)

    assert sorted(d.routing_key for d in shipped) == sorted(keys[:6])
    assert [d.routing_key for d in large] == ["shop.purchase.confirmed.us.large"]
    by_key = {m.routing_key: m for m in messages}
    for delivery in shipped + large:
        sent = by_key[delivery.routing_key]
        assert (delivery.body, delivery.content_type) == (sent.body, sent.content_type)
        assert sent.headers.items() <= delivery.headers.items()  # the broker may add its own (a delivery count)
        assert (delivery.redeliveries, delivery.attempt, delivery.broker_dead_reason) == (0, 1, "")
    assert nothing_more(bus.subscribe(SHIPPING, prefetch=10))


def test_an_event_no_subscriber_binds_is_kept_in_the_unrouted_queue(broker):
    bus = broker.open()
    bus.publish([event("shop.purchase.refunded.us.large"), event("shop.purchase.confirmed.us.small"),
                 event("shop.purchasex.confirmed")])

    assert ready(bus, UNROUTED_QUEUE_NAME, "shipping.events", "loyalty.large-orders") == [2, 1, 0]


def test_publish_confirms_every_message_of_a_batch_in_order(broker):
    bus = broker.open()
    messages = [event("shop.order.cancelled.o-1", number=n) for n in range(25)]

    assert bus.publish(messages) == PublishResult(confirmed=tuple(m.message_id for m in messages))
    assert len(fetch_until(bus.subscribe(SHIPPING, prefetch=30), 25)) == 25


def test_events_published_after_declare_wait_for_the_subscribers_first_subscribe(broker):
    publisher = broker.open()
    publisher.publish([event("shop.purchase.confirmed.us.large")])
    publisher.close()

    consumer_bus = broker.open()  # declaring again leaves the waiting message alone
    deliveries = fetch_until(consumer_bus.subscribe(LARGE_ORDERS, prefetch=10), 1)

    assert [(d.routing_key, d.redeliveries) for d in deliveries] == [("shop.purchase.confirmed.us.large", 0)]


def test_acked_deliveries_are_gone_for_good(broker):
    bus = broker.open()
    bus.publish([event("shop.order.cancelled.o-1", number=n) for n in range(3)])
    reader = bus.subscribe(SHIPPING, prefetch=10)

    assert len(fetch_until(reader, 3)) == 3
    reader.close()

    assert nothing_more(broker.open().subscribe(SHIPPING, prefetch=10), within=1.5)
    assert ready(bus, "shipping.events") == [0]


def test_a_delivery_never_settled_comes_back_with_its_redelivery_counted(broker):
    bus = broker.open()
    bus.publish([event("shop.order.cancelled.o-1"), event("shop.order.cancelled.o-2", number=2)])
    reader = bus.subscribe(SHIPPING, prefetch=10)
    first = fetch_until(reader, 2, settle=False)
    reader.ack(first[:1])
    reader.close()
    bus.close()  # the consumer died before the second ack

    again = fetch_until(broker.open().subscribe(SHIPPING, prefetch=10), 1, within=8)

    assert [d.body for d in again] == [first[1].body]
    assert (again[0].redeliveries, again[0].attempt) == (1, 2)


def test_requeue_gives_the_message_back_at_once_counted_as_a_redelivery(broker):
    bus = broker.open()
    bus.publish([event("shop.order.cancelled.o-1")])
    reader = bus.subscribe(SHIPPING, prefetch=10)
    [first] = fetch_until(reader, 1, settle=False)

    reader.requeue([first])

    [again] = fetch_until(reader, 1, within=3)
    assert (again.body, again.redeliveries) == (first.body, 1)


def test_retry_later_brings_the_message_back_after_its_delay_while_the_next_one_goes_first(broker):
    bus = broker.open()
    bus.publish([event("shop.order.cancelled.o-1", number=1), event("shop.order.cancelled.o-2", number=2)])
    reader = bus.subscribe(SHIPPING, prefetch=1)
    [failed] = fetch_until(reader, 1, settle=False)
    assert failed.routing_key == "shop.order.cancelled.o-1"

    retried_at = time.monotonic()
    reader.retry_later(failed, attempt=failed.attempt, delay_seconds=1.5)

    [next_one] = fetch_until(reader, 1)
    assert next_one.routing_key == "shop.order.cancelled.o-2"
    [retried] = fetch_until(reader, 1, within=6)
    assert time.monotonic() - retried_at >= 1.4
    # The body, the headers and the event's routing key come back as they were.
    assert retried.body == failed.body and retried.routing_key == "shop.order.cancelled.o-1"
    # One more attempt counted: our header on a copy, or the broker's own receive count (SQS).
    assert retried.attempt == failed.attempt + 1
    assert retried.headers["ce-type"] == "shop.order.cancelled.o-1"
    assert nothing_more(reader)


def test_a_paused_reader_takes_nothing_and_gives_back_what_it_held_until_resumed(broker):
    bus = broker.open()
    reader = bus.subscribe(SHIPPING, prefetch=10)
    bus.publish([event("shop.order.cancelled.o-1")])
    reader.pause()

    assert nothing_more(reader)
    reader.resume()
    assert [d.routing_key for d in fetch_until(reader, 1)] == ["shop.order.cancelled.o-1"]


def test_send_to_queue_puts_messages_on_that_subscribers_queue_only_as_they_were(broker):
    bus = broker.open()
    replayed = [event("shop.purchase.confirmed.us.large", number=1, **{ATTEMPT_HEADER: 3}),
                event("shop.order.cancelled.o-2", number=2)]

    assert bus.send_to_queue("shipping.events", replayed) == PublishResult(
        confirmed=tuple(m.message_id for m in replayed))

    deliveries = fetch_until(bus.subscribe(SHIPPING, prefetch=10), 2)
    assert sorted((d.body, d.routing_key, d.attempt) for d in deliveries) == sorted(
        [(replayed[0].body, "shop.purchase.confirmed.us.large", 4), (replayed[1].body, "shop.order.cancelled.o-2", 1)])
    assert nothing_more(bus.subscribe(LARGE_ORDERS, prefetch=10))


def test_queue_depths_count_ready_messages_per_queue(broker):
    bus = broker.open()
    bus.publish([event("shop.order.cancelled.o-1", number=n) for n in range(3)])
    names = ["shipping.events", "loyalty.large-orders", "shipping.events.dead", "nobody.events"]

    depths = bus.queue_depths(names)

    consumers = 0 if broker.consumer_count else None
    assert [(d.queue, d.ready, d.consumers) for d in depths] == [
        ("shipping.events", 3, consumers), ("loyalty.large-orders", 0, consumers),
        ("shipping.events.dead", 0, consumers), ("nobody.events", None, None)]


__all__ += [name for name in dict(globals()) if name.startswith("test_")]
