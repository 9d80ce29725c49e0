"""Each adapter's `capabilities` record, checked against its real broker: what the docs' matrix and
/ops/brokers/ say must be what the broker does.

One test per capability, run once per adapter (embedded on a SQLite file; RabbitMQ in a fresh vhost;
ActiveMQ and the SQS emulator in a namespace of their own). A missing server skips its tests, or
fails them in CI (`require_service`).
"""
import time
import uuid

import pytest

from messaging.brokers import OutgoingMessage, adapter_class, event_bus
from messaging.topology import UNROUTED_QUEUE_NAME, Subscription
from tests.integration import backends as it
from tests.integration.backends import require_service

SHIPPING = Subscription(name="shipping", queue_name="shipping.events", database="shipping", handlers_path="",
                        binding_keys=("shop.purchase.confirmed.#", "shop.order.cancelled.#"))
# How long an unsettled message stays away on brokers that bring it back after a timeout.
VISIBILITY_SECONDS = 1


@pytest.fixture(params=["embedded", "rabbitmq", "activemq", "sqs"])
def broker_url(request, tmp_path, settings):
    kind = request.param
    if kind == "embedded":
        settings.BROKER_VISIBILITY_TIMEOUT_SECONDS = VISIBILITY_SECONDS
        yield f"eventshop-sqlite:///{tmp_path / 'broker.sqlite3'}"
    elif kind == "rabbitmq":
        require_service("RabbitMQ", it.RABBITMQ_HOST, it.RABBITMQ_PORT)
        vhost = it.RabbitMQVhost()
        vhost.create()
        yield vhost.url
        vhost.delete()
    elif kind == "activemq":
        require_service("ActiveMQ (STOMP)", it.ACTIVEMQ_HOST, it.ACTIVEMQ_STOMP_PORT)
        yield f"stomp://{it.ACTIVEMQ_HOST}:{it.ACTIVEMQ_STOMP_PORT}?namespace=cap{uuid.uuid4().hex[:8]}"
    else:
        require_service("the SQS + SNS emulator", it.SQS_HOST, it.SQS_PORT)
        yield (f"sqs://us-east-1?endpoint=http://{it.SQS_HOST}:{it.SQS_PORT}&namespace=cap{uuid.uuid4().hex[:8]}"
               f"&visibility_timeout={VISIBILITY_SECONDS}")


@pytest.fixture
def bus(broker_url):
    bus = event_bus(broker_url)
    bus.declare([SHIPPING])
    yield bus
    bus.close()


def capabilities(broker_url):
    return adapter_class(broker_url).capabilities


def message(routing_key="shop.purchase.confirmed.de.standard", body=None):
    return OutgoingMessage(message_id=str(uuid.uuid4()), routing_key=routing_key,
                           body=body or f'{{"n": "{uuid.uuid4()}"}}'.encode(), content_type="application/json",
                           headers={"ce-type": routing_key}, ordering_key="1")


def fetch_one(reader, *, within=15.0):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        deliveries = reader.fetch(1, timeout=0.5)
        if deliveries:
            return deliveries[0]
    raise AssertionError(f"nothing came within {within:.0f}s")


def test_publish_confirmation_confirms_every_message_of_a_batch(bus, broker_url):
    assert capabilities(broker_url).publish_confirmation
    batch = [message() for _ in range(3)]
    result = bus.publish(batch)
    assert result.error is None and list(result.confirmed) == [m.message_id for m in batch]


def test_consumer_count_declared_means_queue_depths_report_consumers(bus, broker_url):
    reader = bus.subscribe(SHIPPING, prefetch=5)
    try:
        reader.fetch(1, timeout=0.5)  # a push-based broker registers the consumer by now
        depth = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            [depth] = bus.queue_depths([SHIPPING.queue_name])
            if depth.consumers or not capabilities(broker_url).consumer_count:
                break
            time.sleep(0.5)
    finally:
        reader.close()
    if capabilities(broker_url).consumer_count:
        assert depth.consumers and depth.consumers >= 1
    else:
        assert depth.consumers is None


def test_delayed_delivery_brings_a_retried_message_back_late_not_at_once(bus, broker_url):
    assert capabilities(broker_url).delayed_delivery
    bus.publish([message()])
    reader = bus.subscribe(SHIPPING, prefetch=5)
    try:
        first = fetch_one(reader)
        retried_at = time.monotonic()
        reader.retry_later(first, attempt=1, delay_seconds=2)
        assert reader.fetch(1, timeout=1.0) == [], "the retried message came back before its delay"
        again = fetch_one(reader, within=20)
        assert time.monotonic() - retried_at >= 1.5
        assert again.body == first.body and again.attempt >= 2
        reader.ack([again])
    finally:
        reader.close()


def test_unrouted_events_are_kept_where_declared(bus, broker_url):
    declared = capabilities(broker_url).unrouted_events
    assert "unrouted" in declared or "catch-all" in declared, "every adapter declares a place for unrouted events"
    result = bus.publish([message("warehouse.stock.counted")])
    assert result.error is None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        [depth] = bus.queue_depths([UNROUTED_QUEUE_NAME])
        if depth.ready:
            break
        time.sleep(0.5)
    assert depth.ready == 1


def test_the_delivery_count_is_what_the_record_says_after_two_unsettled_closes(bus, broker_url):
    declared = capabilities(broker_url).delivery_count
    bus.publish([message()])
    seen = []
    for _ in range(3):
        reader = bus.subscribe(SHIPPING, prefetch=1)
        try:
            seen.append(fetch_one(reader, within=20))
            if len(seen) == 3:
                reader.ack([seen[-1]])
        finally:
            reader.close()  # unsettled: back to the queue (at once, or after the visibility timeout)
    counts = [delivery.redeliveries for delivery in seen]
    if declared.lower().startswith("exact") or "counts every receive" in declared:
        assert counts == [0, 1, 2] and seen[-1].redeliveries_exact
    else:  # ActiveMQ over STOMP: only "redelivered"
        assert declared.startswith("Not exact")
        assert counts == [0, 1, 1] and not seen[-1].redeliveries_exact
