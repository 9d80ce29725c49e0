"""The retry delay and the retry decision alone: exponential backoff with equal jitter, capped, and a
transient failure put back with that delay until the attempts run out."""
import pytest
from django.db import OperationalError

from messaging import retries
from messaging.consumer import TransientError
from messaging.models import DeadLetter, InboxMessage
from messaging.retries import retry_delay_seconds
from tests.messaging.builders import RecordingRetryScheduler, delivery, envelope, purchase
from tests.messaging.recording import RecordingProcessor


class EdgeOfTheWindow:
    """Stands in for `random`: draws the lowest or the highest delay the jitter allows."""

    def __init__(self, edge: str):
        self.edge = edge

    def uniform(self, low, high):
        return low if self.edge == "low" else high


@pytest.fixture
def backoff(settings):
    settings.CONSUMER_RETRY_BASE_SECONDS = 1.0
    settings.CONSUMER_RETRY_MAX_SECONDS = 60.0


@pytest.mark.parametrize(("attempt", "window"), [
    (1, (0.5, 1.0)), (2, (1.0, 2.0)), (3, (2.0, 4.0)), (6, (16.0, 32.0)),
    (7, (30.0, 60.0)), (8, (30.0, 60.0)), (30, (30.0, 60.0)),
])
def test_the_retry_delay_doubles_each_attempt_within_the_upper_half_of_its_window_up_to_the_cap(backoff, monkeypatch, attempt, window):
    drawn = []
    for edge in ("low", "high"):
        monkeypatch.setattr(retries, "random", EdgeOfTheWindow(edge))
        drawn.append(retry_delay_seconds(attempt))

    assert tuple(drawn) == window


def test_the_retry_delay_is_jittered_and_never_leaves_its_window(backoff):
    delays = [retry_delay_seconds(4) for _ in range(200)]

    assert all(4.0 <= delay <= 8.0 for delay in delays)
    assert len(set(delays)) > 150  # spread out, not one value for every consumer


def test_the_retry_delay_follows_the_configured_base_and_cap(settings, monkeypatch):
    settings.CONSUMER_RETRY_BASE_SECONDS, settings.CONSUMER_RETRY_MAX_SECONDS = 3.0, 10.0
    monkeypatch.setattr(retries, "random", EdgeOfTheWindow("high"))

    assert [retry_delay_seconds(attempt) for attempt in (1, 2, 3, 4)] == [3.0, 6.0, 10.0, 10.0]


@pytest.mark.django_db(databases=["default", "shipping"])
def test_a_transient_failure_is_scheduled_again_with_its_attempt_number_and_the_backoff_delay(backoff, settings):
    settings.CONSUMER_MAX_ATTEMPTS = 5
    processor = RecordingProcessor(fail_with=TransientError("label service timed out"))
    scheduler = RecordingRetryScheduler()
    message = delivery(envelope(purchase(order_id=90)))

    outcomes = [processor.process(message, scheduler)]
    outcomes += [processor.process(scheduler.redelivery(), scheduler) for _ in range(2)]

    assert outcomes == ["retry", "retry", "retry"]
    assert [attempt for _, attempt, _ in scheduler.scheduled] == [1, 2, 3]
    delays = [delay for _, _, delay in scheduler.scheduled]
    assert 0.5 <= delays[0] <= 1.0 and 1.0 <= delays[1] <= 2.0 and 2.0 <= delays[2] <= 4.0
    assert all(copy.body == message.body for copy, _, _ in scheduler.scheduled)
    assert not InboxMessage.objects.using("shipping").exists() and not DeadLetter.objects.using("shipping").exists()


@pytest.mark.django_db(databases=["default", "shipping"])
def test_the_last_attempt_of_a_transient_failure_is_dead_lettered_not_retried(settings):
    settings.CONSUMER_MAX_ATTEMPTS = 3
    processor = RecordingProcessor(fail_with=OperationalError("the database is restarting"))
    scheduler = RecordingRetryScheduler()
    third_attempt = delivery(envelope(purchase(order_id=91)), headers={"x-eventshop-failed-attempts": 2})

    assert processor.process(third_attempt, scheduler) == "dead_lettered"

    assert scheduler.scheduled == []
    letter = DeadLetter.objects.using("shipping").get()
    assert (letter.reason, letter.attempts) == ("retries_exhausted", 3)


@pytest.mark.django_db(databases=["default", "shipping"])
def test_the_attempt_before_the_last_is_still_retried(settings):
    settings.CONSUMER_MAX_ATTEMPTS = 3
    processor = RecordingProcessor(fail_with=OperationalError("the database is restarting"))
    scheduler = RecordingRetryScheduler()
    second_attempt = delivery(envelope(purchase(order_id=92)), headers={"x-eventshop-failed-attempts": 1})

    assert processor.process(second_attempt, scheduler) == "retry"
    assert [attempt for _, attempt, _ in scheduler.scheduled] == [2]
