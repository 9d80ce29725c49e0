"""The RabbitMQ adapter against the port's contract, each test in a fresh virtual host; and what only RabbitMQ does."""
import time

import pytest

from messaging.brokers import BrokerError, event_bus
from messaging.brokers.rabbitmq import RabbitMQBus
from messaging.topology import QUEUE_DELIVERY_LIMIT
from tests.integration.backends import RABBITMQ_HOST, RABBITMQ_PORT, RabbitMQVhost, require_service
from tests.messaging.brokers.contract import *  # noqa: F401,F403  (the contract's tests)
from tests.messaging.brokers.contract import SHIPPING, BrokerUnderTest, event, fetch_until

pytestmark = pytest.mark.rabbitmq


@pytest.fixture
def broker():
    require_service("RabbitMQ", RABBITMQ_HOST, RABBITMQ_PORT)
    vhost = RabbitMQVhost()
    vhost.create()
    under_test = BrokerUnderTest(connect=lambda: event_bus(vhost.url, connect_timeout=5), consumer_count=True)
    try:
        yield under_test
    finally:
        under_test.close_all()
        vhost.delete()


def test_the_url_picks_the_rabbitmq_adapter(broker):
    assert isinstance(broker.open(), RabbitMQBus)


def test_a_message_requeued_up_to_the_delivery_limit_comes_out_of_fetch_from_the_dead_queue(broker):
    bus = broker.open()
    poison = event("shop.order.cancelled.o-1")
    bus.publish([poison])
    reader = bus.subscribe(SHIPPING, prefetch=10)

    deliveries = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        batch = reader.fetch(1, 0.5)
        deliveries.extend(batch)
        if batch and batch[0].broker_dead_reason:
            reader.ack(batch)
            break
        reader.requeue(batch)

    *handed_out, dead = deliveries
    assert [d.redeliveries for d in handed_out] == list(range(QUEUE_DELIVERY_LIMIT + 1))
    assert (dead.body, dead.broker_dead_reason) == (poison.body, "delivery_limit")
    assert dead.routing_key == "shop.order.cancelled.o-1"  # the event's key, from x-death
    assert dead.headers["ce-type"] == poison.headers["ce-type"]
    assert [d.ready for d in bus.queue_depths(["shipping.events", "shipping.events.dead"])] == [0, 0]


def test_queue_depths_count_a_reader_as_a_consumer_and_in_flight_messages_as_not_ready(broker):
    bus = broker.open()
    bus.publish([event("shop.order.cancelled.o-1", number=n) for n in range(3)])
    reader = bus.subscribe(SHIPPING, prefetch=1)
    fetch_until(reader, 1, settle=False)

    [depth] = bus.queue_depths(["shipping.events"])

    assert (depth.ready, depth.consumers) == (2, 1)


def test_an_unreachable_broker_is_a_broker_error_at_once():
    started = time.monotonic()
    with pytest.raises(BrokerError):
        event_bus("amqp://guest:guest@127.0.0.1:1//", connect_timeout=1)
    assert time.monotonic() - started < 5
