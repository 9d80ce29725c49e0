"""The ActiveMQ adapter against the real broker (scripts/activemq/start.sh), each test in its own namespace."""
import os
import socket
import time
import uuid

import pytest

from messaging.brokers.activemq import ActiveMQBus
from messaging.brokers.base import ATTEMPT_HEADER, BrokerError, OutgoingMessage, QueueDepth
from messaging.topology import QUEUE_DELIVERY_LIMIT, Subscription
from tests.integration.backends import require_service

ACTIVEMQ_HOST = os.environ.get("TEST_ACTIVEMQ_HOST", "127.0.0.1")
ACTIVEMQ_STOMP_PORT = int(os.environ.get("TEST_ACTIVEMQ_STOMP_PORT", "61613"))

SHIPPING = Subscription(name="shipping", queue_name="shipping.events", database="shipping", handlers_path="",
                        binding_keys=("shop.purchase.confirmed.#", "shop.order.cancelled.#"))
LARGE_ORDERS = Subscription(name="loyalty-bonus", queue_name="loyalty.large-orders", database="loyalty",
                            handlers_path="", binding_keys=("shop.purchase.confirmed.*.large",))


@pytest.fixture
def broker_url():
    require_service("ActiveMQ (STOMP)", ACTIVEMQ_HOST, ACTIVEMQ_STOMP_PORT)
    return f"stomp://{ACTIVEMQ_HOST}:{ACTIVEMQ_STOMP_PORT}?namespace=t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def bus(broker_url):
    bus = ActiveMQBus(broker_url, connect_timeout=5)
    bus.declare([SHIPPING, LARGE_ORDERS])
    yield bus
    bus.close()


@pytest.fixture
def open_reader(bus):
    readers = []

    def open_reader(subscription=SHIPPING, *, prefetch=10, on=None):
        reader = (on or bus).subscribe(subscription, prefetch=prefetch)
        readers.append(reader)
        return reader

    yield open_reader
    for reader in readers:
        reader.close()


def event(routing_key, *, number=0, ordering_key="", headers=None):
    return OutgoingMessage(message_id=f"{routing_key}/{number}/{uuid.uuid4()}", routing_key=routing_key,
                           body=f'{{"key": "{routing_key}", "n": {number}}}'.encode(),
                           content_type="application/json", headers={"ce-type": routing_key, **(headers or {})},
                           ordering_key=ordering_key)


def fetch_until(reader, count, *, timeout=5.0, settle=True):
    """Fetch until `count` deliveries came (or the deadline), acking each batch if `settle`."""
    deliveries = []
    deadline = time.monotonic() + timeout
    while len(deliveries) < count and time.monotonic() < deadline:
        batch = reader.fetch(count - len(deliveries), timeout=0.2)
        if settle:
            reader.ack(batch)
        deliveries.extend(batch)
    return deliveries


def assert_nothing_more(reader, within=0.5):
    assert reader.fetch(10, timeout=within) == []


def test_each_subscriber_gets_exactly_the_events_its_bindings_match(bus, open_reader):
    shipping, large_orders = open_reader(SHIPPING), open_reader(LARGE_ORDERS)
    result = bus.publish([
        event("shop.purchase.confirmed"),  # `#` matches zero words
        event("shop.purchase.confirmed.us.large"),
        event("shop.purchase.confirmed.gb.small"),
        event("shop.purchase.confirmed.large"),  # one word short of `*.large`
        event("shop.order.cancelled.o-1"),
        event("shop.purchase.refunded.us.large"),  # no subscriber: unrouted
    ])
    assert result.error is None

    shipped = fetch_until(shipping, 5)
    assert sorted(d.routing_key for d in shipped) == sorted([
        "shop.purchase.confirmed", "shop.purchase.confirmed.us.large", "shop.purchase.confirmed.gb.small",
        "shop.purchase.confirmed.large", "shop.order.cancelled.o-1"])
    assert [d.routing_key for d in fetch_until(large_orders, 1)] == ["shop.purchase.confirmed.us.large"]
    assert_nothing_more(shipping)
    assert_nothing_more(large_orders)
    assert shipped[0].headers["ce-type"] == shipped[0].routing_key
    assert shipped[0].content_type == "application/json"


def test_an_event_no_subscriber_binds_is_kept_in_the_unrouted_queue(bus):
    bus.publish([event("shop.purchase.refunded.us.large"), event("shop.purchase.confirmed.us.small")])

    depths = {depth.queue: depth.ready for depth in bus.queue_depths(
        ["shop.events.unrouted", "shipping.events", "loyalty.large-orders"])}
    assert depths == {"shop.events.unrouted": 1, "shipping.events": 1, "loyalty.large-orders": 0}


def test_publish_confirms_every_message_of_a_batch_in_order(bus):
    messages = [event("shop.purchase.confirmed.us.small", number=n) for n in range(25)]

    result = bus.publish(messages)

    assert result.error is None
    assert result.confirmed == tuple(message.message_id for message in messages)


def test_publish_on_a_lost_connection_confirms_nothing_and_says_why(bus):
    bus.link.close()

    result = bus.publish([event("shop.purchase.confirmed.us.small")])

    assert result.confirmed == ()
    assert isinstance(result.error, BrokerError)


def test_events_published_after_declare_wait_for_the_subscribers_first_subscribe(broker_url, open_reader):
    with ActiveMQBus(broker_url, connect_timeout=5) as publisher:
        publisher.declare([SHIPPING, LARGE_ORDERS])
        publisher.publish([event("shop.purchase.confirmed.us.large")])

    with ActiveMQBus(broker_url, connect_timeout=5) as consumer_bus:
        consumer_bus.declare([SHIPPING, LARGE_ORDERS])
        reader = open_reader(LARGE_ORDERS, on=consumer_bus)
        deliveries = fetch_until(reader, 1)
        assert [d.routing_key for d in deliveries] == ["shop.purchase.confirmed.us.large"]
        assert deliveries[0].redeliveries == 0  # declaring again did not touch the waiting message


def test_acked_deliveries_are_gone_for_good(bus, open_reader):
    bus.publish([event("shop.order.cancelled.o-1", number=n) for n in range(3)])
    reader = open_reader()

    assert len(fetch_until(reader, 3)) == 3
    reader.close()

    assert_nothing_more(open_reader())
    assert bus.queue_depths(["shipping.events"])[0].ready == 0


def test_a_delivery_never_settled_comes_back_marked_redelivered(bus, open_reader):
    bus.publish([event("shop.order.cancelled.o-1")])
    reader = open_reader()
    first = fetch_until(reader, 1, settle=False)
    assert first[0].redeliveries == 0

    reader.close()  # as if the consumer died: the broker takes the unsettled message back
    again = fetch_until(open_reader(), 1)

    assert [d.body for d in again] == [first[0].body]
    assert again[0].redeliveries == 1
    assert again[0].attempt == 2


def test_a_paused_reader_takes_nothing_until_resumed_and_its_queue_keeps_collecting(bus, open_reader):
    reader = open_reader()
    reader.pause()
    bus.publish([event("shop.order.cancelled.o-1")])

    assert_nothing_more(reader)
    assert bus.queue_depths(["shipping.events"]) == [_depth("shipping.events", 1, 0)]
    reader.resume()
    assert [d.routing_key for d in fetch_until(reader, 1)] == ["shop.order.cancelled.o-1"]


def test_retry_later_brings_the_message_back_after_the_delay_behind_the_next_ones(bus, open_reader):
    bus.publish([event("shop.order.cancelled.o-1", number=1), event("shop.order.cancelled.o-2", number=2)])
    reader = open_reader(prefetch=1)
    [failed] = reader.fetch(1, timeout=5)

    retried_at = time.monotonic()
    reader.retry_later(failed, attempt=failed.attempt, delay_seconds=2)

    [next_one] = fetch_until(reader, 1)
    assert next_one.routing_key == "shop.order.cancelled.o-2"
    assert_nothing_more(reader, within=1.0)
    [retried] = fetch_until(reader, 1, timeout=5)
    waited = time.monotonic() - retried_at
    assert 1.9 <= waited < 4.5
    assert retried.body == failed.body
    assert retried.headers[ATTEMPT_HEADER] == "1"
    assert retried.attempt == failed.attempt + 1
    assert retried.headers["ce-type"] == "shop.order.cancelled.o-1"


def test_a_message_requeued_until_the_delivery_limit_comes_out_of_the_dead_letter_queue(bus, open_reader):
    bus.publish([event("shop.order.cancelled.o-1")])
    reader = open_reader()
    deliveries = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        batch = reader.fetch(1, timeout=0.5)
        deliveries.extend(batch)
        if batch and batch[0].broker_dead_reason:
            reader.ack(batch)
            break
        reader.requeue(batch)

    dead = deliveries[-1]
    assert dead.broker_dead_reason == "delivery_limit"
    assert len(deliveries) == QUEUE_DELIVERY_LIMIT + 1  # ten deliveries, then the copy from the DLQ
    assert all(d.redeliveries == 1 for d in deliveries[1:-1])
    assert dead.routing_key == "shop.order.cancelled.o-1"
    assert bus.queue_depths(["shipping.events", "shipping.events.dead"])[1].ready == 0


def test_send_to_queue_puts_messages_on_that_subscribers_queue_only(bus, open_reader):
    result = bus.send_to_queue("shipping.events", [event("shop.purchase.confirmed.us.large")])

    assert result.error is None and len(result.confirmed) == 1
    assert [d.routing_key for d in fetch_until(open_reader(SHIPPING), 1)] == ["shop.purchase.confirmed.us.large"]
    assert_nothing_more(open_reader(LARGE_ORDERS))
    assert isinstance(bus.send_to_queue("nobody.events", [event("x.y")]).error, Exception)


def test_queue_depths_count_ready_messages_and_consumers(bus, open_reader):
    bus.publish([event("shop.order.cancelled.o-1", number=n) for n in range(3)])
    assert bus.queue_depths(["shipping.events", "loyalty.large-orders", "unknown.queue"]) == [
        _depth("shipping.events", 3, 0), _depth("loyalty.large-orders", 0, 0), _depth("unknown.queue", None, None)]

    reader = open_reader(prefetch=1)
    fetch_until(reader, 1, settle=False)  # in flight (unacked) is not ready

    assert bus.queue_depths(["shipping.events"]) == [_depth("shipping.events", 2, 1)]


def _depth(queue, ready, consumers):
    return QueueDepth(queue, ready, consumers)


def test_a_connection_lost_mid_fetch_is_a_broker_error_from_fetch_and_ack(bus, open_reader):
    bus.publish([event("shop.order.cancelled.o-1")])
    reader = open_reader()
    deliveries = fetch_until(reader, 1, settle=False)

    reader.link.connection.transport.socket.shutdown(socket.SHUT_RDWR)  # the network goes

    with pytest.raises(BrokerError):
        reader.fetch(1, timeout=5)
    with pytest.raises(BrokerError):
        reader.ack(deliveries)


def test_an_unreachable_broker_is_a_broker_error():
    started = time.monotonic()
    with pytest.raises(BrokerError):
        ActiveMQBus("stomp://127.0.0.1:1", connect_timeout=1)
    assert time.monotonic() - started < 5


def test_message_groups_keep_each_orders_events_in_order_across_two_readers(bus, open_reader):
    first, second = open_reader(prefetch=2), open_reader(prefetch=2)
    orders = [f"order-{n}" for n in range(3)]  # odd: plain round robin would split every order
    bus.publish([event(f"shop.order.cancelled.{order}", number=step, ordering_key=order)
                 for step in range(5) for order in orders])

    seen = {order: [] for order in orders}  # order -> [(reader, step)]
    deadline = time.monotonic() + 10
    while sum(map(len, seen.values())) < 15 and time.monotonic() < deadline:
        for name, reader in (("first", first), ("second", second)):
            batch = reader.fetch(1, timeout=0.1)
            for delivery in batch:
                order = delivery.routing_key.rsplit(".", 1)[1]
                seen[order].append((name, int(delivery.body.decode().split('"n": ')[1].rstrip("}"))))
            reader.ack(batch)

    for order, handled in seen.items():
        assert [step for _, step in handled] == list(range(5)), order
        assert len({name for name, _ in handled}) == 1, f"{order} went to both readers"
    assert {name for handled in seen.values() for name, _ in handled} == {"first", "second"}
