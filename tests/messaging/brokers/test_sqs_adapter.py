"""The Amazon SQS + SNS adapter against moto's server on 127.0.0.1:4566 (scripts/sqs/start.sh).

Each test declares its topic and queues under a namespace of its own, so runs share one emulator.
"""
from __future__ import annotations

import itertools
import json
import time
import uuid

import pytest

from messaging.brokers import BrokerError, OutgoingMessage, PublishResult, event_bus
from messaging.brokers.sqs import (
    SqsBus,
    routing_attributes,
    routing_filter,
    topic_match,
    unrouted_filter,
)
from messaging.brokers.base import BrokerConfigurationError
from messaging.topology import QUEUE_DELIVERY_LIMIT, Subscription
from tests.integration.backends import require_service

EMULATOR_HOST, EMULATOR_PORT = "127.0.0.1", 4566
UNROUTED = "shop.events.unrouted"

SHIPPING = Subscription(name="shipping", queue_name="shipping.events", database="shipping", handlers_path="",
                        binding_keys=("shop.purchase.confirmed.#", "shop.order.cancelled.#"))
LARGE_ORDERS = Subscription(name="loyalty-bonus", queue_name="loyalty.large-orders", database="loyalty",
                            handlers_path="", binding_keys=("shop.purchase.confirmed.*.large",))


@pytest.fixture
def sqs_bus():
    """Opens buses on the emulator under one fresh namespace: `sqs_bus(fifo=1, visibility_timeout=1)`."""
    require_service("SQS/SNS emulator (scripts/sqs/start.sh)", EMULATOR_HOST, EMULATOR_PORT)
    namespace = f"t{uuid.uuid4().hex[:12]}"
    opened = []

    def open_bus(**options) -> SqsBus:
        options = {"endpoint": f"http://{EMULATOR_HOST}:{EMULATOR_PORT}", "namespace": namespace, **options}
        query = "&".join(f"{key}={value}" for key, value in options.items())
        bus = event_bus(f"sqs://us-east-1?{query}", connect_timeout=2)
        opened.append(bus)
        return bus

    yield open_bus
    for bus in opened:
        bus.close()


def message(routing_key: str, *, body: bytes | None = None, ordering_key: str = "", **headers) -> OutgoingMessage:
    message_id = str(uuid.uuid4())
    return OutgoingMessage(
        message_id=message_id,
        routing_key=routing_key,
        body=body if body is not None else json.dumps({"id": message_id, "key": routing_key}).encode(),
        content_type="application/cloudevents+json",
        headers={"ce-type": ".".join(routing_key.split(".")[:3]), **headers},
        ordering_key=ordering_key,
    )


def fetch_until(reader, count: int, *, within: float = 10.0, settle: bool = True, batch_size: int = 10) -> list:
    """Fetch (and ack, if `settle`) until `count` deliveries came, or the deadline passed."""
    deliveries = []
    deadline = time.monotonic() + within
    while len(deliveries) < count and time.monotonic() < deadline:
        batch = reader.fetch(batch_size, 1)
        if settle and batch:
            reader.ack(batch)
        deliveries.extend(batch)
    return deliveries


def nothing_more(reader) -> bool:
    return reader.fetch(10, 1) == []


# --- routing, without the emulator: every pattern's filter policy against AMQP topic matching -----


PATTERNS = ["#", "*", "a", "a.b", "a.#", "a.*", "#.b", "*.b", "a.#.b", "a.*.b", "a.#.a", "*.*", "#.*", "*.#",
            "a.b.c.d.e.#", "a.b.c.d.e.*", "a.*.#", "#.*.b", "a.b.c.#", "*.*.b.c", "a.b.*.*.c.d", "#.#"]
KEYS = [""] + [".".join(words) for size in range(1, 6) for words in itertools.product("abc", repeat=size)] + [
    "a.b.c.d.e", "a.b.c.d.e.f", "a.b.c.d.e.f.g"]


def filter_matches(policy, routing_key: str) -> bool:
    from moto.sns.utils import FilterPolicyMatcher  # moto's own matcher: the one its server applies

    attributes = {name: {"Type": value["DataType"], "Value": value["StringValue"]}
                  for name, value in routing_attributes(routing_key).items()}
    return FilterPolicyMatcher(policy or {}, None).matches(attributes, "")


def test_each_binding_pattern_becomes_a_filter_policy_with_amqp_topic_semantics():
    for pattern in PATTERNS:
        policy = routing_filter([pattern])
        wrong = [key for key in KEYS if filter_matches(policy, key) != topic_match(pattern, key)]
        assert not wrong, f"{pattern!r} as {policy} disagrees on {wrong[:5]}"


def test_several_bindings_or_and_the_unrouted_filter_keeps_every_event_no_binding_takes():
    for patterns in itertools.combinations(PATTERNS[1:], 2):
        policy = routing_filter(patterns)
        unrouted, uncovered = unrouted_filter(patterns)
        for key in KEYS[::3]:
            routed = any(topic_match(pattern, key) for pattern in patterns)
            assert filter_matches(policy, key) == routed, (patterns, key, policy)
            if not routed:
                assert filter_matches(unrouted, key), ("lost", patterns, key, unrouted)
            elif filter_matches(unrouted, key):  # kept twice: only for a binding it could not negate
                assert any(topic_match(pattern, key) for pattern in uncovered), (patterns, key, unrouted)


def test_the_shops_bindings_negate_exactly():
    assert unrouted_filter(SHIPPING.bindings() + LARGE_ORDERS.bindings())[1] == ()


def test_a_binding_with_literal_words_between_wildcards_is_refused():
    with pytest.raises(BrokerConfigurationError, match="between wildcards"):
        routing_filter(["shop.*.confirmed.#"])


# --- against the emulator ----------------------------------------------------------------------------


def test_each_subscriber_gets_exactly_its_events_published_before_its_first_poll(sqs_bus):
    bus = sqs_bus()
    bus.declare([SHIPPING, LARGE_ORDERS])
    keys = ["shop.purchase.confirmed.us.large", "shop.purchase.confirmed.de.small", "shop.purchase.confirmed",
            "shop.order.cancelled.us", "shop.purchase.confirmed.us.x.large", "shop.refund.issued.us.large",
            "shop.purchase.confirmedx.us.large"]
    messages = [message(key, **{"correlation-id": f"c-{index}"}) for index, key in enumerate(keys)]
    assert bus.publish(messages) == PublishResult(confirmed=tuple(m.message_id for m in messages))

    shipping = fetch_until(bus.subscribe(SHIPPING, prefetch=10), 5)
    large = fetch_until(bus.subscribe(LARGE_ORDERS, prefetch=10), 1)

    assert sorted(d.routing_key for d in shipping) == sorted(keys[:5])  # `#` takes zero words too
    assert [d.routing_key for d in large] == ["shop.purchase.confirmed.us.large"]  # `*` is one word
    by_key = {m.routing_key: m for m in messages}
    for delivery in shipping + large:
        sent = by_key[delivery.routing_key]
        assert (delivery.body, delivery.content_type, delivery.headers) == (sent.body, sent.content_type, sent.headers)
        assert (delivery.redeliveries, delivery.attempt, delivery.broker_dead_reason) == (0, 1, "")
    assert nothing_more(bus.subscribe(SHIPPING, prefetch=10))
    assert nothing_more(bus.subscribe(LARGE_ORDERS, prefetch=10))


def test_an_event_no_subscriber_is_bound_for_is_kept_in_the_unrouted_queue(sqs_bus):
    bus = sqs_bus()
    bus.declare([SHIPPING, LARGE_ORDERS])
    unrouted = [message("shop.refund.issued.us.large"), message("shop.purchase.confirmedx")]
    assert len(bus.publish([message("shop.purchase.confirmed.us.large"), *unrouted]).confirmed) == 3

    url = bus.queue_url(UNROUTED)
    kept = []
    deadline = time.monotonic() + 10
    while len(kept) < 2 and time.monotonic() < deadline:
        kept += bus.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                        MessageAttributeNames=["All"]).get("Messages", [])
    assert sorted(m["MessageAttributes"]["routing_key"]["StringValue"] for m in kept) == sorted(
        m.routing_key for m in unrouted)


def test_publish_confirms_every_message_id_in_order_across_batches(sqs_bus):
    bus = sqs_bus()
    bus.declare([SHIPPING])
    messages = [message(f"shop.order.cancelled.n{index}") for index in range(23)]
    result = bus.publish(messages)
    assert result == PublishResult(confirmed=tuple(m.message_id for m in messages))
    assert len(fetch_until(bus.subscribe(SHIPPING, prefetch=10), 23)) == 23


def test_publish_reports_a_broker_fault_instead_of_raising(sqs_bus):
    import boto3
    from botocore.config import Config

    bus = sqs_bus()
    bus.declare([SHIPPING])
    bus.sns = boto3.client("sns", region_name="us-east-1", endpoint_url="http://127.0.0.1:1",
                           aws_access_key_id="x", aws_secret_access_key="x",
                           config=Config(retries={"max_attempts": 1}))
    result = bus.publish([message("shop.order.cancelled.us")])
    assert result.confirmed == () and isinstance(result.error, BrokerError)


def test_an_acked_delivery_is_gone_and_an_unacked_one_comes_back_after_the_visibility_timeout(sqs_bus):
    bus = sqs_bus(visibility_timeout=2)
    bus.declare([SHIPPING])
    bus.publish([message("shop.order.cancelled.us"), message("shop.order.cancelled.de")])
    reader = bus.subscribe(SHIPPING, prefetch=10)

    first = fetch_until(reader, 2, settle=False)
    assert len(first) == 2
    reader.ack(first[:1])  # the other one: the consumer "crashed" before its ack

    again = fetch_until(reader, 1, within=8)
    assert [d.body for d in again] == [first[1].body]
    assert (again[0].redeliveries, again[0].attempt) == (1, 2)
    assert nothing_more(reader)


def test_retry_later_brings_the_message_back_after_its_delay_while_the_next_one_goes_first(sqs_bus):
    bus = sqs_bus()
    bus.declare([SHIPPING])
    failing, behind = message("shop.order.cancelled.us"), message("shop.order.cancelled.de")
    bus.publish([failing])
    bus.publish([behind])
    reader = bus.subscribe(SHIPPING, prefetch=10)

    [first] = fetch_until(reader, 1, settle=False, batch_size=1)
    assert first.body == failing.body
    reader.retry_later(first, attempt=first.attempt, delay_seconds=3)
    retried_at = time.monotonic()

    [next_one] = fetch_until(reader, 1)
    assert next_one.body == behind.body
    [back] = fetch_until(reader, 1, within=10)
    assert back.body == failing.body
    assert time.monotonic() - retried_at >= 2.5
    assert back.attempt == first.attempt + 1
    assert "x-eventshop-failed-attempts" not in back.headers  # SQS counted the receive itself


def test_requeue_gives_the_message_back_at_once(sqs_bus):
    bus = sqs_bus()
    bus.declare([SHIPPING])
    bus.publish([message("shop.order.cancelled.us")])
    reader = bus.subscribe(SHIPPING, prefetch=10)
    [first] = fetch_until(reader, 1, settle=False)
    reader.requeue([first])
    [again] = fetch_until(reader, 1, within=3)
    assert (again.body, again.redeliveries) == (first.body, 1)


def test_a_message_received_past_the_limit_comes_out_of_fetch_dead_lettered(sqs_bus):
    bus = sqs_bus(max_receive_count=2, dead_poll_seconds=0)
    bus.declare([SHIPPING])
    poison = message("shop.order.cancelled.us")
    bus.publish([poison])
    reader = bus.subscribe(SHIPPING, prefetch=10)

    for receive in (1, 2):
        [delivery] = fetch_until(reader, 1, settle=False)
        assert delivery.attempt == receive and not delivery.broker_dead_reason
        reader.requeue([delivery])
    [dead] = fetch_until(reader, 1)
    assert (dead.body, dead.broker_dead_reason) == (poison.body, "delivery_limit")
    assert dead.headers == poison.headers
    assert [d.ready for d in bus.queue_depths(["shipping.events", "shipping.events.dead"])] == [0, 0]


def test_the_default_redrive_limit_is_the_queue_delivery_limit(sqs_bus):
    bus = sqs_bus()
    bus.declare([SHIPPING])
    attributes = bus.sqs.get_queue_attributes(QueueUrl=bus.queue_url("shipping.events"),
                                              AttributeNames=["RedrivePolicy", "VisibilityTimeout"])["Attributes"]
    assert json.loads(attributes["RedrivePolicy"])["maxReceiveCount"] == QUEUE_DELIVERY_LIMIT
    assert attributes["VisibilityTimeout"] == "30"


def test_send_to_queue_puts_a_replayed_message_on_the_subscribers_queue_as_it_was(sqs_bus):
    bus = sqs_bus()
    bus.declare([SHIPPING])
    replayed = [message("shop.order.cancelled.us", **{"x-eventshop-failed-attempts": 3}),
                message("shop.order.cancelled.de", body=b"\xff\x00 not text")]
    assert bus.send_to_queue("shipping.events", replayed) == PublishResult(
        confirmed=tuple(m.message_id for m in replayed))

    deliveries = fetch_until(bus.subscribe(SHIPPING, prefetch=10), 2)
    def as_sent(item):
        return item.body, item.routing_key, json.dumps(item.headers, sort_keys=True), item.content_type

    assert sorted(map(as_sent, deliveries)) == sorted(map(as_sent, replayed))
    assert sorted(d.attempt for d in deliveries) == [1, 4]
    assert isinstance(bus.send_to_queue("nobody.events", replayed).error, BrokerError)


def test_queue_depths_count_ready_messages_per_queue_and_know_no_consumers(sqs_bus):
    bus = sqs_bus()
    bus.declare([SHIPPING, LARGE_ORDERS])
    bus.publish([message("shop.purchase.confirmed.us.large"), message("shop.order.cancelled.us"),
                 message("shop.refund.issued.us")])
    names = ["shipping.events", "loyalty.large-orders", "shipping.events.dead", UNROUTED, "nobody.events"]
    deadline = time.monotonic() + 5
    while [d.ready for d in bus.queue_depths(names)] != [2, 1, 0, 1, None] and time.monotonic() < deadline:
        time.sleep(0.2)
    depths = bus.queue_depths(names)
    assert [(d.queue, d.ready, d.consumers) for d in depths] == [
        ("shipping.events", 2, None), ("loyalty.large-orders", 1, None), ("shipping.events.dead", 0, None),
        (UNROUTED, 1, None), ("nobody.events", None, None)]


def test_declare_is_idempotent_and_a_second_process_sees_the_same_queues(sqs_bus):
    bus = sqs_bus()
    bus.declare([SHIPPING])
    bus.declare([SHIPPING, LARGE_ORDERS])
    other = sqs_bus()
    other.declare([SHIPPING, LARGE_ORDERS])
    bus.publish([message("shop.purchase.confirmed.us.large")])
    assert len(fetch_until(other.subscribe(LARGE_ORDERS, prefetch=10), 1)) == 1
    assert len(fetch_until(other.subscribe(SHIPPING, prefetch=10), 1)) == 1


def test_an_unreachable_endpoint_raises_broker_error():
    started = time.monotonic()
    with pytest.raises(BrokerError):
        SqsBus("sqs://us-east-1?endpoint=http://127.0.0.1:1", connect_timeout=1)
    assert time.monotonic() - started < 10


def test_fifo_keeps_the_order_of_each_message_group(sqs_bus):
    bus = sqs_bus(fifo=1)
    bus.declare([SHIPPING])
    messages = [message(f"shop.order.cancelled.{group}", ordering_key=f"order-{group}", n=index)
                for index in range(5) for group in ("a", "b")]
    assert bus.publish(messages).confirmed == tuple(m.message_id for m in messages)

    deliveries = fetch_until(bus.subscribe(SHIPPING, prefetch=10), 10)
    for group in ("a", "b"):
        assert [d.headers["n"] for d in deliveries if d.routing_key.endswith(group)] == list(range(5))
    assert bus.queue_url("shipping.events").endswith(".fifo")


# --- one topic per publishing service ------------------------------------------------------------------

# The shop's journey log: its own events, and some of the shipping and loyalty services'.
JOURNEY = Subscription(name="shop", queue_name="shop.journey", database="default", handlers_path="",
                       binding_keys=("shop.order.cancelled.#", "shipping.shipment.created.#",
                                     "loyalty.points.awarded.#"))
LABELS = Subscription(name="labels", queue_name="shipping.labels", database="shipping", handlers_path="",
                      binding_keys=("shipping.label.rendered.#",))


def keys_of(deliveries) -> list[str]:
    return sorted(d.routing_key for d in deliveries)


def receive_unrouted(bus, count: int, *, within: float = 10.0) -> list[str]:
    url, kept = bus.queue_url(UNROUTED), []
    deadline = time.monotonic() + within
    while len(kept) < count and time.monotonic() < deadline:
        kept += bus.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                        MessageAttributeNames=["All"]).get("Messages", [])
    return sorted(m["MessageAttributes"]["routing_key"]["StringValue"] for m in kept)


def our_topics(bus) -> list[str]:
    prefix = f"{bus.options.namespace}-"
    names = [topic["TopicArn"].rsplit(":", 1)[1]
             for page in bus.sns.get_paginator("list_topics").paginate() for topic in page["Topics"]]
    return sorted(name.removeprefix(prefix) for name in names if name.startswith(prefix))


def test_an_event_of_each_service_reaches_exactly_the_subscribers_that_bind_it(sqs_bus):
    bus = sqs_bus()
    bus.declare([SHIPPING, LARGE_ORDERS, JOURNEY, LABELS])
    keys = ["shop.purchase.confirmed.us.large", "shop.order.cancelled", "shipping.shipment.created",
            "shipping.label.rendered", "loyalty.points.awarded", "loyalty.points.reversed",
            "shipping.shipment.cancelled"]
    assert len(bus.publish([message(key) for key in keys]).confirmed) == len(keys)

    expected = {SHIPPING: ["shop.order.cancelled", "shop.purchase.confirmed.us.large"],
                LARGE_ORDERS: ["shop.purchase.confirmed.us.large"],
                JOURNEY: ["loyalty.points.awarded", "shipping.shipment.created", "shop.order.cancelled"],
                LABELS: ["shipping.label.rendered"]}
    for subscription, routed in expected.items():
        reader = bus.subscribe(subscription, prefetch=10)
        assert keys_of(fetch_until(reader, len(routed))) == routed, subscription.name
        assert nothing_more(reader), subscription.name
    assert receive_unrouted(bus, 2) == ["loyalty.points.reversed", "shipping.shipment.cancelled"]


def test_there_is_one_topic_per_publishing_service_and_each_queue_is_subscribed_to_the_ones_it_binds(sqs_bus):
    bus = sqs_bus()
    bus.declare([SHIPPING, LARGE_ORDERS, JOURNEY, LABELS])
    bus.publish([message("shop.order.cancelled.us"), message("shipping.label.rendered"),
                 message("loyalty.points.awarded")])
    assert our_topics(bus) == ["loyalty_events", "shipping_events", "shop_events"]

    subscribed: dict[str, set[str]] = {}
    for page in bus.sns.get_paginator("list_subscriptions").paginate():
        for subscription in page["Subscriptions"]:
            if subscription["TopicArn"].rsplit(":", 1)[1].startswith(f"{bus.options.namespace}-"):
                topic = subscription["TopicArn"].rsplit(":", 1)[1].removeprefix(f"{bus.options.namespace}-")
                queue = subscription["Endpoint"].rsplit(":", 1)[1].removeprefix(f"{bus.options.namespace}-")
                subscribed.setdefault(queue, set()).add(topic)
    assert subscribed == {
        "shipping_events": {"shop_events"}, "loyalty_large-orders": {"shop_events"},
        "shop_journey": {"shop_events", "shipping_events", "loyalty_events"}, "shipping_labels": {"shipping_events"},
        "shop_events_unrouted": {"shop_events", "shipping_events", "loyalty_events"}}


def test_an_event_of_a_service_without_a_topic_yet_lands_in_the_unrouted_queue(sqs_bus):
    bus = sqs_bus()
    bus.declare([SHIPPING, JOURNEY])
    assert "warehouse_events" not in our_topics(bus)
    publisher = sqs_bus()  # another process, which declared nothing
    counted = [message("warehouse.stock.counted"), message("warehouse.stock.counted.de")]
    assert publisher.publish(counted).confirmed == tuple(m.message_id for m in counted)

    assert receive_unrouted(bus, 2) == ["warehouse.stock.counted", "warehouse.stock.counted.de"]
    assert "warehouse_events" in our_topics(bus)
    for subscription in (SHIPPING, JOURNEY):
        assert nothing_more(bus.subscribe(subscription, prefetch=10))

    # A later declare keeps the catch-all on that topic, still taking everything there.
    bus.declare([SHIPPING, JOURNEY])
    publisher.publish([message("warehouse.stock.moved")])
    assert receive_unrouted(bus, 1) == ["warehouse.stock.moved"]


def test_a_binding_dropped_since_the_last_declare_no_longer_takes_that_services_events(sqs_bus):
    bus = sqs_bus()
    bus.declare([JOURNEY])
    shop_only = Subscription(name="shop", queue_name="shop.journey", database="default", handlers_path="",
                             binding_keys=("shop.order.cancelled.#",))
    bus.declare([shop_only])
    bus.publish([message("shipping.shipment.created"), message("shop.order.cancelled")])
    reader = bus.subscribe(shop_only, prefetch=10)
    assert keys_of(fetch_until(reader, 1)) == ["shop.order.cancelled"]
    assert nothing_more(reader)
    assert receive_unrouted(bus, 1) == ["shipping.shipment.created"]


def test_publish_confirms_ids_in_order_across_a_batch_mixing_three_topics(sqs_bus):
    bus = sqs_bus()
    bus.declare([SHIPPING, JOURNEY])
    services = ["shop.order.cancelled.n{}", "shipping.shipment.created.n{}", "loyalty.points.awarded.n{}"]
    # Runs of each topic, longer than a PublishBatch, and single messages interleaved.
    keys = [services[0].format(i) for i in range(12)] + [services[i % 3].format(i) for i in range(12, 19)] + [
        services[2].format(i) for i in range(19, 31)]
    messages = [message(key) for key in keys]
    assert bus.publish(messages) == PublishResult(confirmed=tuple(m.message_id for m in messages))
    assert len(fetch_until(bus.subscribe(JOURNEY, prefetch=10), len(keys), within=15)) == len(keys)


def test_a_topic_that_cannot_be_created_stops_publish_with_what_went_before_confirmed(sqs_bus):
    bus = sqs_bus()
    bus.declare([SHIPPING])
    messages = [message("shop.order.cancelled.us"), message(f"{'x' * 300}.too.long"),
                message("shop.order.cancelled.de")]
    result = bus.publish(messages)
    assert result.confirmed == (messages[0].message_id,) and isinstance(result.error, BrokerError)
