"""The outbox: an event is recorded with its change and published only once the broker has it."""
import json

import pytest
from django.db import transaction

from messaging.brokers import BrokerError, PublishResult, event_bus
from messaging.brokers.embedded import EmbeddedBus
from messaging.brokers.rabbitmq import RabbitMQBus
from messaging.models import OutboxMessage
from messaging.outbox import MessageTooLarge, outbox_event_record, outbox_relay_publish_pending
from messaging.topology import SUBSCRIPTIONS
from shop.services import OrderItem, ShippingAddress, order_cancel, order_place
from tests.messaging.builders import in_memory_broker, messages_on_queue, purchase

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
