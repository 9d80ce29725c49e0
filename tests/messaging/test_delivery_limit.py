"""The delivery limit alone: a message the broker handed out again and again without an ack (the
consumer died on it each time) is dead-lettered before its handler runs once more."""
import pytest

from messaging.models import DeadLetter, InboxMessage
from messaging.topology import QUEUE_DELIVERY_LIMIT
from tests.messaging.builders import RecordingRetryScheduler, delivery, envelope, purchase
from tests.messaging.recording import RecordingProcessor

pytestmark = pytest.mark.django_db(databases=["default", "shipping"])


def redelivered(order_id: int, times: int):
    return delivery(envelope(purchase(order_id=order_id)), redeliveries=times)


@pytest.mark.parametrize("redeliveries", [QUEUE_DELIVERY_LIMIT, QUEUE_DELIVERY_LIMIT + 5])
def test_a_message_redelivered_up_to_the_limit_is_dead_lettered_without_calling_its_handler(redeliveries):
    processor = RecordingProcessor(ordered=False)

    assert processor.process(redelivered(100, redeliveries), RecordingRetryScheduler()) == "dead_lettered"

    assert processor.handled == []
    letter = DeadLetter.objects.using("shipping").get()
    assert letter.reason == "delivery_limit"
    assert not InboxMessage.objects.using("shipping").exists()


def test_a_message_redelivered_once_less_than_the_limit_is_still_handled():
    processor = RecordingProcessor(ordered=False)

    assert processor.process(redelivered(101, QUEUE_DELIVERY_LIMIT - 1), RecordingRetryScheduler()) == "applied"

    assert len(processor.handled) == 1
    assert not DeadLetter.objects.using("shipping").exists()


def test_where_the_broker_only_says_redelivered_the_runtime_counts_the_redeliveries_and_stops_at_the_limit():
    # STOMP says "redelivered" and nothing more: the same broker message id coming back is what counts.
    processor = RecordingProcessor(ordered=False)
    body = envelope(purchase(order_id=102))
    comes_back = delivery(body, redeliveries=1)
    comes_back.redeliveries_exact, comes_back.message_id = False, "ID:broker-1:1:1:1:1"

    outcomes = [processor.process(comes_back, RecordingRetryScheduler()) for _ in range(QUEUE_DELIVERY_LIMIT)]

    assert outcomes == ["applied"] + ["duplicate"] * (QUEUE_DELIVERY_LIMIT - 2) + ["dead_lettered"]
    assert DeadLetter.objects.using("shipping").get().reason == "delivery_limit"
    # Another message's count is its own.
    other = delivery(envelope(purchase(order_id=103)), redeliveries=1)
    other.redeliveries_exact, other.message_id = False, "ID:broker-1:1:1:1:2"
    assert processor.process(other, RecordingRetryScheduler()) == "applied"
