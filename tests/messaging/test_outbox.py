"""The outbox: an event is recorded with its change and published only once the broker has it."""
import json

import pytest
from django.db import transaction
from kombu import Connection, Consumer

from messaging.models import OutboxMessage
from messaging.outbox import MessageTooLarge, OutboxPublisher, outbox_event_record, outbox_relay_publish_pending
from messaging.topology import SUBSCRIPTIONS
from shop.services import OrderItem, ShippingAddress, order_cancel, order_place
from tests.messaging.builders import purchase

pytestmark = pytest.mark.django_db(databases=["default", "shipping", "loyalty"])


def _drain(connection: Connection, queue_name: str) -> list[dict]:
    received = []
    with Consumer(connection.default_channel, queues=[SUBSCRIPTIONS[queue_name].queue()],
                  on_message=lambda message: (received.append(json.loads(message.body)), message.ack())):
        while True:
            try:
                connection.drain_events(timeout=0.2)
            except TimeoutError:
                return received


@pytest.fixture
def memory_broker():
    with Connection("memory://") as connection:
        yield connection


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


def test_the_relay_publishes_pending_rows_to_every_subscriber_and_marks_them(customer, product, address, memory_broker):
    order_place(customer=customer, items=[OrderItem("MUG-01", 1)], shipping_address=ShippingAddress(**address))
    publisher = OutboxPublisher(memory_broker)

    published = outbox_relay_publish_pending(using="default", publisher=publisher, grace_seconds=0, limit=10)

    assert published == 1
    assert OutboxMessage.objects.using("default").get().published_at is not None
    for subscriber in ("shipping", "loyalty"):
        [document] = _drain(memory_broker, subscriber)
        assert document["type"] == "shop.purchase.confirmed"
    assert _drain(memory_broker, "shop") == []  # the shop does not listen to its own purchases
    assert outbox_relay_publish_pending(using="default", publisher=publisher, grace_seconds=0, limit=10) == 0


def test_the_relay_leaves_young_rows_to_the_process_that_wrote_them(customer, product, address, memory_broker):
    order_place(customer=customer, items=[OrderItem("MUG-01", 1)], shipping_address=ShippingAddress(**address))

    assert outbox_relay_publish_pending(using="default", publisher=OutboxPublisher(memory_broker), grace_seconds=60, limit=10) == 0


class BrokerRefusingAfter(OutboxPublisher):
    """A broker that confirms `accepted` messages, then fails."""

    def __init__(self, connection, accepted: int):
        super().__init__(connection)
        self.accepted = accepted

    def publish(self, message):
        if self.accepted == 0:
            raise ConnectionError("broker went away")
        self.accepted -= 1
        super().publish(message)


def test_a_broker_failure_midway_marks_only_what_was_confirmed(customer, product, address, memory_broker):
    for _ in range(3):
        order_place(customer=customer, items=[OrderItem("MUG-01", 1)], shipping_address=ShippingAddress(**address))

    with pytest.raises(ConnectionError):
        outbox_relay_publish_pending(using="default", publisher=BrokerRefusingAfter(memory_broker, 1), grace_seconds=0, limit=10)

    rows = list(OutboxMessage.objects.using("default").order_by("id"))
    assert [row.published_at is not None for row in rows] == [True, False, False]
    assert "broker went away" in rows[1].last_error
    assert outbox_relay_publish_pending(using="default", publisher=OutboxPublisher(memory_broker), grace_seconds=0, limit=10) == 2


def test_an_event_larger_than_the_limit_is_refused_before_it_is_recorded(settings):
    settings.MESSAGE_MAX_BYTES = 200
    with pytest.raises(MessageTooLarge), transaction.atomic():
        outbox_event_record(purchase(), using="default")
    assert not OutboxMessage.objects.using("default").exists()


def test_rabbitmq_connections_wait_for_publisher_confirms():
    from messaging.broker import broker_connection

    assert broker_connection(url="amqp://guest:guest@127.0.0.1:5672//").transport_options == {"confirm_publish": True}
