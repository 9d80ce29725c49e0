"""The sequence check alone: every event below carries a new id, so the inbox cannot recognise a
repeat; only the subject's progress (SubjectProgress) decides what is stale and what is early."""
import pytest

from messaging.models import InboxMessage, SubjectProgress
from tests.messaging.builders import RecordingRetryScheduler, cancellation, delivery, envelope, purchase
from tests.messaging.recording import RecordingProcessor

pytestmark = pytest.mark.django_db(databases=["default", "shipping"])


def process(processor, event, sequence):
    return processor.process(delivery(envelope(event, sequence=sequence)), RecordingRetryScheduler())


def progress(order_id: int) -> int:
    return SubjectProgress.objects.using("shipping").get(consumer="recording", subject=str(order_id)).last_sequence


def inbox_outcomes(order_id: int) -> list[tuple[int, str]]:
    rows = InboxMessage.objects.using("shipping").filter(consumer="recording", subject=str(order_id)).order_by("id")
    return list(rows.values_list("sequence", "outcome"))


def test_an_event_at_or_below_the_subjects_progress_is_skipped_as_stale_even_with_a_new_event_id():
    processor = RecordingProcessor()

    outcomes = [process(processor, purchase(order_id=80), 1), process(processor, cancellation(order_id=80), 2),
                process(processor, purchase(order_id=80), 1), process(processor, cancellation(order_id=80), 2)]

    assert outcomes == ["applied", "applied", "stale", "stale"]
    assert [sequence for _, sequence, _ in processor.handled] == [1, 2]
    assert progress(80) == 2
    assert inbox_outcomes(80) == [(1, "applied"), (2, "applied"), (1, "stale"), (2, "stale")]


def test_an_event_ahead_of_the_progress_is_applied_labelled_early_and_makes_its_predecessor_stale():
    processor = RecordingProcessor()

    assert process(processor, cancellation(order_id=81), 2) == "early"
    assert process(processor, purchase(order_id=81), 1) == "stale"

    assert [sequence for _, sequence, _ in processor.handled] == [2]
    assert progress(81) == 2
    assert inbox_outcomes(81) == [(2, "early"), (1, "stale")]


def test_the_next_event_in_sequence_is_applied_not_early():
    processor = RecordingProcessor()

    assert [process(processor, purchase(order_id=82), 1), process(processor, cancellation(order_id=82), 2)] == ["applied", "applied"]
    assert inbox_outcomes(82) == [(1, "applied"), (2, "applied")]


def test_each_subject_keeps_its_own_progress():
    processor = RecordingProcessor()

    assert process(processor, cancellation(order_id=83), 5) == "early"
    assert process(processor, purchase(order_id=84), 1) == "applied"
    assert (progress(83), progress(84)) == (5, 1)
