"""The inbox alone: with the sequence check out of the way (an unordered subscription), only the
unique (consumer, event id) key stops a redelivered event from being applied twice."""
import pytest
from django.db import IntegrityError, transaction

from messaging.models import DeliveryAttempt, InboxMessage
from tests.messaging.builders import RecordingRetryScheduler, delivery, envelope, purchase
from tests.messaging.recording import RecordingProcessor

pytestmark = pytest.mark.django_db(databases=["default", "shipping"])


def test_the_same_event_processed_twice_is_a_duplicate_and_handled_once():
    processor = RecordingProcessor(ordered=False)
    message = delivery(envelope(purchase(order_id=70)))

    outcomes = [processor.process(message, RecordingRetryScheduler()) for _ in range(2)]

    assert outcomes == ["applied", "duplicate"]
    assert len(processor.handled) == 1
    assert InboxMessage.objects.using("shipping").filter(consumer="recording").count() == 1
    recorded = DeliveryAttempt.objects.using("shipping").order_by("id").values_list("outcome", flat=True)
    assert list(recorded) == ["applied", "duplicate"]


def test_two_consumers_each_apply_the_same_event_once():
    message = delivery(envelope(purchase(order_id=71)))
    first, second = RecordingProcessor(name="first", ordered=False), RecordingProcessor(name="second", ordered=False)

    assert [first.process(message, RecordingRetryScheduler()) for _ in range(2)] == ["applied", "duplicate"]
    assert [second.process(message, RecordingRetryScheduler()) for _ in range(2)] == ["applied", "duplicate"]
    assert (len(first.handled), len(second.handled)) == (1, 1)


def test_the_database_refuses_a_second_inbox_row_for_one_event_and_consumer():
    event = envelope(purchase(order_id=72))
    row = dict(consumer="recording", event_id=event.id, event_type=event.type, source=event.source,
               subject=event.subject, sequence=1, outcome="applied")
    InboxMessage.objects.using("shipping").create(**row)

    with pytest.raises(IntegrityError), transaction.atomic(using="shipping"):
        InboxMessage.objects.using("shipping").create(**row)
