"""A batch of deliveries in one transaction, each message in its own savepoint: one bad message is
dead-lettered or retried alone and the rest commit; acks follow the commit; a database failure puts
back whatever is unsettled."""
import pytest
from django.db import OperationalError, connections

from messaging.consumer import EventConsumer, TransientError
from messaging.models import DeadLetter, DeliveryAttempt, InboxMessage, SubjectProgress
from messaging.topology import SUBSCRIPTIONS
from shipping.models import Shipment
from tests.messaging.builders import RecordingRetryScheduler, cancellation, delivery, envelope, purchase

pytestmark = pytest.mark.django_db(databases=["default", "shipping", "loyalty"])


class RecordingReader(RecordingRetryScheduler):
    """A subscription reader that records how each delivery was settled."""

    def __init__(self):
        super().__init__()
        self.acked, self.requeued = [], []

    def ack(self, deliveries):
        self.acked += deliveries

    def requeue(self, deliveries):
        self.requeued += deliveries


@pytest.fixture
def shipping_consumer():
    return EventConsumer(SUBSCRIPTIONS["shipping"])


def purchases(*order_ids):
    return [delivery(envelope(purchase(order_id=order_id))) for order_id in order_ids]


def test_a_poison_message_inside_a_batch_is_dead_lettered_alone_and_the_rest_commit(shipping_consumer):
    real_handler = shipping_consumer.handlers["shop.purchase.confirmed"]

    def poison_on_order_3(event):
        if event.event.order_id == 3:
            raise KeyError("shipping_address")
        real_handler(event)

    shipping_consumer.handlers = {**shipping_consumer.handlers, "shop.purchase.confirmed": poison_on_order_3}
    batch = purchases(1, 2, 3, 4) + [delivery(b"not json")]
    reader = RecordingReader()

    shipping_consumer.handle_batch(batch, reader)

    assert sorted(Shipment.objects.values_list("order_id", flat=True)) == [1, 2, 4]
    assert sorted(DeadLetter.objects.using("shipping").values_list("reason", flat=True)) == ["handler_error", "not_json"]
    assert InboxMessage.objects.using("shipping").count() == 3  # the poison message left no inbox row
    assert reader.acked == batch and reader.requeued == [] and reader.scheduled == []


def test_a_transient_failure_inside_a_batch_retries_only_that_message(shipping_consumer):
    real_handler = shipping_consumer.handlers["shop.purchase.confirmed"]

    def flaky_on_order_12(event):
        if event.event.order_id == 12:
            raise TransientError("label service timed out")
        real_handler(event)

    shipping_consumer.handlers = {**shipping_consumer.handlers, "shop.purchase.confirmed": flaky_on_order_12}
    batch = purchases(11, 12, 13)
    reader = RecordingReader()

    shipping_consumer.handle_batch(batch, reader)

    assert sorted(Shipment.objects.values_list("order_id", flat=True)) == [11, 13]
    assert [scheduled for scheduled, _, _ in reader.scheduled] == [batch[1]]
    assert reader.acked == [batch[0], batch[2]]  # the retry settled the other one
    outcomes = sorted(DeliveryAttempt.objects.using("shipping").values_list("outcome", flat=True))
    assert outcomes == ["applied", "applied", "retry"]


def test_a_batch_applies_in_sequence_across_its_messages_and_skips_a_duplicate_within_it(shipping_consumer):
    buy = envelope(purchase(order_id=21), sequence=1)
    cancel = envelope(cancellation(order_id=21), sequence=2)
    batch = [delivery(cancel), delivery(buy), delivery(buy)]  # early, stale, duplicate
    reader = RecordingReader()

    shipping_consumer.handle_batch(batch, reader)

    outcomes = list(DeliveryAttempt.objects.using("shipping").order_by("id").values_list("outcome", flat=True))
    assert outcomes == ["early", "stale", "duplicate"]
    assert SubjectProgress.objects.using("shipping").get(subject="21").last_sequence == 2
    assert reader.acked == batch


def test_a_database_failure_during_a_batch_commits_nothing_and_requeues_what_is_unsettled(shipping_consumer, monkeypatch):
    real_handler = shipping_consumer.handlers["shop.purchase.confirmed"]
    flaky = iter([TransientError("first one fails")])

    connection = connections["shipping"]
    real_savepoint_rollback = connection.savepoint_rollback

    def connection_gone_once(sid):
        connection.savepoint_rollback = real_savepoint_rollback
        raise OperationalError("server closed the connection unexpectedly")

    def database_lost_on_order_33(event):
        if event.event.order_id == 33:
            # The connection drops: the statement fails, and so does rolling back to the message's savepoint.
            connection.savepoint_rollback = connection_gone_once
            raise OperationalError("server closed the connection unexpectedly")
        for error in flaky:
            raise error
        real_handler(event)

    shipping_consumer.handlers = {**shipping_consumer.handlers, "shop.purchase.confirmed": database_lost_on_order_33}
    monkeypatch.setattr("messaging.consumer.runtime.time.sleep", lambda seconds: None)
    batch = purchases(31, 32, 33, 34)
    reader = RecordingReader()

    shipping_consumer.handle_batch(batch, reader)

    assert not Shipment.objects.exists() and not InboxMessage.objects.using("shipping").exists()
    assert [scheduled for scheduled, _, _ in reader.scheduled] == [batch[0]]  # settled by its retry
    assert reader.requeued == batch[1:] and reader.acked == []
