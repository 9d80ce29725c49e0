"""The outbox: an event is recorded with its change and published only once the broker has it."""
import json
import time

import pytest
from django.db import transaction

from messaging.brokers import BrokerError, PublishResult, event_bus
from messaging.brokers.embedded import EmbeddedBus
from messaging.brokers.rabbitmq import RabbitMQBus
from messaging.models import OutboxMessage
from messaging.outbox import (
    MessageTooLarge,
    _AfterCommitPublisher,
    outbox_event_record,
    outbox_publish,
    outbox_relay_publish_pending,
)
from messaging.topology import SUBSCRIPTIONS
from shop.services import OrderItem, ShippingAddress, order_cancel, order_place
from tests.messaging.builders import UNREACHABLE_BROKER, in_memory_broker, messages_on_queue, purchase

pytestmark = pytest.mark.django_db(databases=["default", "shipping", "loyalty"])


def _drain(broker_url: str, subscriber: str) -> list[dict]:
    return [json.loads(delivery.body) for delivery in messages_on_queue(broker_url, subscriber)]


@pytest.fixture
def memory_bus(settings):
    url = in_memory_broker(settings)
    with event_bus(url) as bus:
        bus.declare(SUBSCRIPTIONS.values())
        yield bus


@pytest.mark.django_db(transaction=True, databases=["default"])
def test_recording_outside_a_transaction_is_refused():
    with pytest.raises(RuntimeError):
        outbox_event_record(purchase(), using="default")


def test_a_placed_order_and_its_event_commit_together_and_a_failed_one_leaves_neither(customer, product, address):
    placed = order_place(customer=customer, items=[OrderItem("MUG-01", 2)], shipping_address=ShippingAddress(**address))

    [message] = OutboxMessage.objects.using("default").all()
    assert (message.event_type, message.subject, message.sequence) == ("shop.purchase.confirmed", str(placed.order.pk), 1)
    assert json.loads(message.body)["data"]["total"] == "25.00"

    with pytest.raises(Exception):
        with transaction.atomic():
            order_place(customer=customer, items=[OrderItem("MUG-01", 1)], shipping_address=ShippingAddress(**address))
            raise RuntimeError("the request failed after placing")
    assert OutboxMessage.objects.using("default").count() == 1


def test_sequence_counts_an_orders_events_from_one(customer, product, address):
    order = order_place(customer=customer, items=[OrderItem("MUG-01", 1)], shipping_address=ShippingAddress(**address)).order
    order_cancel(order=order)
    order_cancel(order=order)  # a second cancel changes nothing and records nothing

    assert list(OutboxMessage.objects.using("default").order_by("sequence").values_list("event_type", "sequence")) == [
        ("shop.purchase.confirmed", 1), ("shop.order.cancelled", 2)]


def test_the_relay_publishes_pending_rows_to_every_subscriber_and_marks_them(customer, product, address, memory_bus):
    order_place(customer=customer, items=[OrderItem("MUG-01", 1)], shipping_address=ShippingAddress(**address))

    published = outbox_relay_publish_pending(using="default", bus=memory_bus, grace_seconds=0, limit=10)

    assert published == 1
    assert OutboxMessage.objects.using("default").get().published_at is not None
    for subscriber in ("shipping", "loyalty"):
        [document] = _drain("memory://", subscriber)
        assert document["type"] == "shop.purchase.confirmed"
    assert _drain("memory://", "shop") == []  # the shop does not listen to its own purchases
    assert outbox_relay_publish_pending(using="default", bus=memory_bus, grace_seconds=0, limit=10) == 0


def test_the_relay_leaves_young_rows_to_the_process_that_wrote_them(customer, product, address, memory_bus):
    order_place(customer=customer, items=[OrderItem("MUG-01", 1)], shipping_address=ShippingAddress(**address))

    assert outbox_relay_publish_pending(using="default", bus=memory_bus, grace_seconds=60, limit=10) == 0


class BrokerConfirmingOnly(EmbeddedBus):
    """A broker that confirms only the messages at `confirmed_positions` of each batch (a partial nack)."""

    def __init__(self, url, *, confirmed_positions: set[int]):
        super().__init__(url)
        self.confirmed_positions = confirmed_positions

    def publish(self, messages):
        kept = [message for position, message in enumerate(messages) if position in self.confirmed_positions]
        result = super().publish(kept)
        return PublishResult(result.confirmed, BrokerError("nacked: broker went away"))


def test_a_broker_failure_midway_marks_only_what_was_confirmed(customer, product, address, memory_bus):
    for _ in range(3):
        order_place(customer=customer, items=[OrderItem("MUG-01", 1)], shipping_address=ShippingAddress(**address))

    with BrokerConfirmingOnly("memory://", confirmed_positions={0, 2}) as failing_bus, pytest.raises(BrokerError):
        outbox_relay_publish_pending(using="default", bus=failing_bus, grace_seconds=0, limit=10)

    rows = list(OutboxMessage.objects.using("default").order_by("id"))
    assert [row.published_at is not None for row in rows] == [True, False, True]
    assert "broker went away" in rows[1].last_error and rows[0].last_error == rows[2].last_error == ""
    assert len(_drain("memory://", "shipping")) == 2
    # Exactly the unconfirmed row goes out again.
    assert outbox_relay_publish_pending(using="default", bus=memory_bus, grace_seconds=0, limit=10) == 1
    [document] = _drain("memory://", "shipping")
    assert document["subject"] == rows[1].subject


def test_an_event_larger_than_the_limit_is_refused_before_it_is_recorded(settings):
    settings.MESSAGE_MAX_BYTES = 200
    with pytest.raises(MessageTooLarge), transaction.atomic():
        outbox_event_record(purchase(), using="default")
    assert not OutboxMessage.objects.using("default").exists()


def test_rabbitmq_connections_wait_for_publisher_confirms():
    assert RabbitMQBus.transport_options(None) == {"confirm_publish": True}


# --- marking exactly what the broker confirmed -------------------------------------------------------


class BrokerRefusingAll(EmbeddedBus):
    """A broker that fails before sending anything (the adapter raises instead of reporting)."""

    def publish(self, messages):
        raise BrokerError("connection refused " + "x" * 3000)


class CountingBus(EmbeddedBus):
    """The in-memory broker, counting the batches it was asked to publish."""

    def __init__(self, url, **options):
        super().__init__(url, **options)
        self.batches = []
        self.closed = 0

    def publish(self, messages):
        self.batches.append([message.message_id for message in messages])
        return super().publish(messages)

    def close(self):
        self.closed += 1
        super().close()


def _three_orders(customer, address) -> list[OutboxMessage]:
    for _ in range(3):
        order_place(customer=customer, items=[OrderItem("MUG-01", 1)], shipping_address=ShippingAddress(**address))
    return list(OutboxMessage.objects.using("default").order_by("id"))


def _marks() -> list[tuple]:
    """(still unsent, publish attempts, last error) per outbox row, oldest first."""
    return [(row.published_at is None, row.publish_attempts, row.last_error)
            for row in OutboxMessage.objects.using("default").order_by("id")]


def test_a_partial_nack_marks_the_confirmed_rows_published_and_counts_one_failed_attempt_on_the_rest(
        customer, product, address, memory_bus):
    rows = _three_orders(customer, address)

    with BrokerConfirmingOnly("memory://", confirmed_positions={0, 2}) as failing_bus:
        published, error = outbox_publish(using="default", messages=rows, bus=failing_bus)

    assert published == 2 and isinstance(error, BrokerError)
    assert _marks() == [(False, 1, ""), (True, 1, "BrokerError: nacked: broker went away"), (False, 1, "")]


def test_a_fully_confirmed_batch_marks_every_row_once_and_records_no_error(customer, product, address, memory_bus):
    rows = _three_orders(customer, address)

    assert outbox_publish(using="default", messages=rows, bus=memory_bus) == (3, None)

    assert _marks() == [(False, 1, "")] * 3
    # Published again (the relay and the writer raced): the first publish time and count stand.
    first_published_at = list(OutboxMessage.objects.using("default").order_by("id").values_list("published_at", flat=True))
    assert outbox_publish(using="default", messages=rows, bus=memory_bus) == (3, None)
    assert _marks() == [(False, 1, "")] * 3
    assert list(OutboxMessage.objects.using("default").order_by("id").values_list(
        "published_at", flat=True)) == first_published_at


def test_a_broker_that_confirms_nothing_leaves_every_row_unsent_with_its_error_and_attempt_counted(
        customer, product, address):
    rows = _three_orders(customer, address)

    with BrokerConfirmingOnly("memory://", confirmed_positions=set()) as failing_bus:
        assert outbox_publish(using="default", messages=rows, bus=failing_bus)[0] == 0
        assert outbox_publish(using="default", messages=rows, bus=failing_bus)[0] == 0

    assert _marks() == [(True, 2, "BrokerError: nacked: broker went away")] * 3


def test_an_adapter_that_raises_before_sending_marks_nothing_and_keeps_the_error_within_its_column(
        customer, product, address):
    rows = _three_orders(customer, address)

    with BrokerRefusingAll("memory://") as refusing_bus:
        published, error = outbox_publish(using="default", messages=rows, bus=refusing_bus)

    assert published == 0 and isinstance(error, BrokerError)
    for unsent, attempts, last_error in _marks():
        assert (unsent, attempts) == (True, 1)
        assert last_error.startswith("BrokerError: connection refused x") and len(last_error) == 2000


def test_publishing_nothing_asks_nothing_of_the_broker(memory_bus):
    with CountingBus("memory://") as bus:
        assert outbox_publish(using="default", messages=[], bus=bus) == (0, None)
        assert bus.batches == []


def test_the_relay_publishes_at_most_its_limit_oldest_first(customer, product, address, memory_bus):
    rows = _three_orders(customer, address)

    with CountingBus("memory://") as bus:
        assert outbox_relay_publish_pending(using="default", bus=bus, grace_seconds=0, limit=2) == 2
        assert bus.batches == [[str(rows[0].event_id), str(rows[1].event_id)]]
    assert [unsent for unsent, _, _ in _marks()] == [False, False, True]


# --- the writer's own publish after commit, and its circuit breaker ---------------------------------


def test_after_commit_the_writer_publishes_its_rows_and_keeps_its_connection(customer, product, address, memory_bus):
    rows = _three_orders(customer, address)
    publisher = _AfterCommitPublisher()
    publisher.bus = CountingBus("memory://")

    publisher.publish("default", [rows[0].pk, rows[1].pk])
    publisher.publish("default", [rows[1].pk, rows[2].pk])  # the one already sent is not sent again

    assert publisher.bus.batches == [[str(rows[0].event_id), str(rows[1].event_id)], [str(rows[2].event_id)]]
    assert publisher.bus.closed == 0
    assert [unsent for unsent, _, _ in _marks()] == [False, False, False]


def test_after_a_failed_publish_the_writer_skips_publishing_for_a_while_and_leaves_the_rows_to_the_relay(
        customer, product, address, memory_bus):
    rows = _three_orders(customer, address)
    publisher = _AfterCommitPublisher()
    failing = publisher.bus = BrokerConfirmingOnly("memory://", confirmed_positions=set())

    started = time.monotonic()
    publisher.publish("default", [rows[0].pk])

    assert publisher.bus is None  # the failed connection is dropped
    assert started + publisher.OPEN_SECONDS <= publisher.open_until <= time.monotonic() + publisher.OPEN_SECONDS
    # While open: nothing is published, not even on a fresh connection to a working broker.
    working = publisher.bus = CountingBus("memory://")
    publisher.publish("default", [rows[1].pk])
    assert working.batches == []
    assert [unsent for unsent, _, _ in _marks()] == [True, True, True]
    assert outbox_relay_publish_pending(using="default", bus=memory_bus, grace_seconds=0, limit=10) == 3
    failing.close()


def test_the_breaker_closes_again_after_its_open_time(customer, product, address, memory_bus):
    rows = _three_orders(customer, address)
    publisher = _AfterCommitPublisher()
    publisher.open_until = time.monotonic() - 0.01
    publisher.bus = CountingBus("memory://")

    publisher.publish("default", [rows[0].pk])

    assert publisher.bus.batches == [[str(rows[0].event_id)]]


def test_an_unreachable_broker_after_commit_fails_no_request_and_opens_the_breaker(customer, product, address, settings):
    rows = _three_orders(customer, address)
    settings.BROKER_URL = UNREACHABLE_BROKER
    publisher = _AfterCommitPublisher()

    publisher.publish("default", [rows[0].pk])  # does not raise

    assert publisher.open_until > time.monotonic() and publisher.bus is None
    assert [unsent for unsent, _, _ in _marks()] == [True, True, True]


def test_after_commit_the_writer_connects_on_first_use(customer, product, address, memory_bus):
    rows = _three_orders(customer, address)
    publisher = _AfterCommitPublisher()

    publisher.publish("default", [rows[2].pk])

    assert publisher.bus is not None and publisher.open_until == 0.0
    assert [unsent for unsent, _, _ in _marks()] == [True, True, False]
    publisher.reset()
    assert publisher.bus is None
