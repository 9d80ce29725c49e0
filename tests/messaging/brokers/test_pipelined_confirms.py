"""RabbitMQ's pipelined publisher confirms: a batch is published at once, then its acks awaited together;
exactly what the broker acked is confirmed, whatever it nacks or leaves unanswered stays unsent."""
from collections import defaultdict

import pytest

from messaging.brokers import BrokerError, OutgoingMessage
from messaging.brokers.rabbitmq import RabbitMQBus
from messaging.events import CONTENT_TYPE


class ChannelInConfirmMode:
    def __init__(self):
        self.events = defaultdict(set)

    def answer(self, kind: str, tag: int, multiple: bool = False) -> None:
        for callback in list(self.events[kind]):
            callback(tag, multiple)


class BrokerAnswering:
    """Stands in for the AMQP connection: each `drain_events` delivers the next scripted answer."""

    def __init__(self, channel: ChannelInConfirmMode, answers: list):
        self.channel, self.answers = channel, list(answers)

    def drain_events(self, timeout):
        if not self.answers:
            raise TimeoutError("no more answers")  # an OSError: the bus's errors, like a dropped socket
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        self.channel.answer(*answer)


def bus_answering(answers: list) -> tuple[RabbitMQBus, list[str]]:
    bus = RabbitMQBus.__new__(RabbitMQBus)  # no server: the publish path only, with a scripted broker
    channel = ChannelInConfirmMode()
    bus.url, bus.errors = "amqp://guest@test//", (OSError,)
    bus.connection = BrokerAnswering(channel, answers)
    bus.confirming_producer, bus.published_count, bus.events_exchange_declared = object(), 0, True
    bus._confirming_channel = lambda: channel
    sent: list[str] = []
    bus._publish_now = lambda channel, message, **kwargs: sent.append(message.message_id)
    return bus, sent


def messages(count: int) -> list[OutgoingMessage]:
    return [OutgoingMessage(message_id=f"m{n}", routing_key="shop.purchase.confirmed", body=b"{}",
                            content_type=CONTENT_TYPE) for n in range(1, count + 1)]


def test_a_batch_is_published_before_any_confirm_is_awaited_and_a_multiple_ack_confirms_all_up_to_its_tag():
    bus, sent = bus_answering([("basic_ack", 2, True), ("basic_ack", 3)])
    result = bus.publish(messages(3))
    assert sent == ["m1", "m2", "m3"]
    assert result.confirmed == ("m1", "m2", "m3") and result.error is None


def test_a_broker_nack_of_part_of_a_batch_leaves_only_that_part_unconfirmed():
    bus, _ = bus_answering([("basic_ack", 1), ("basic_nack", 2), ("basic_ack", 4, True)])
    result = bus.publish(messages(4))
    assert result.confirmed == ("m1", "m3", "m4")
    assert isinstance(result.error, BrokerError) and "nacked 1 of 4" in str(result.error)


def test_a_connection_lost_while_waiting_for_confirms_keeps_what_was_acked_before():
    bus, _ = bus_answering([("basic_ack", 1), ConnectionResetError("connection reset by peer")])
    result = bus.publish(messages(3))
    assert result.confirmed == ("m1",)
    assert "ConnectionResetError" in str(result.error)
    assert bus.confirming_producer is None  # the next batch gets a fresh channel, with fresh tags


def test_confirms_not_answered_in_time_are_unconfirmed(monkeypatch):
    monkeypatch.setattr(RabbitMQBus, "CONFIRM_TIMEOUT_SECONDS", 0.05)
    bus, _ = bus_answering([("basic_ack", 1)] + [("basic_ack", 99)] * 10_000)  # never the tags we wait for
    result = bus.publish(messages(2))
    assert result.confirmed == ("m1",) and "no publisher confirm" in str(result.error)


@pytest.mark.django_db(databases=["default"])
def test_a_partial_nack_of_a_pipelined_batch_republishes_only_the_nacked_rows(settings):
    from django.db import transaction

    from messaging.brokers import event_bus
    from messaging.models import OutboxMessage
    from messaging.outbox import outbox_event_record, outbox_relay_publish_pending
    from messaging.topology import SUBSCRIPTIONS
    from tests.messaging.builders import in_memory_broker, messages_on_queue, purchase

    with transaction.atomic(using="default"):
        for order_id in (1, 2, 3):
            outbox_event_record(purchase(order_id=order_id), using="default")
    nacking_bus, _ = bus_answering([("basic_ack", 1), ("basic_nack", 2), ("basic_ack", 3)])
    with pytest.raises(BrokerError):
        outbox_relay_publish_pending(using="default", bus=nacking_bus, grace_seconds=0, limit=10)
    rows = list(OutboxMessage.objects.using("default").order_by("id"))
    assert [row.published_at is not None for row in rows] == [True, False, True]

    url = in_memory_broker(settings)
    with event_bus(url) as bus:
        bus.declare(SUBSCRIPTIONS.values())
        assert outbox_relay_publish_pending(using="default", bus=bus, grace_seconds=0, limit=10) == 1
    [delivery] = messages_on_queue(url, "shipping")
    assert str(rows[1].event_id) in delivery.body.decode()
