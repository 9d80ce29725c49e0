"""The consume loop alone (`EventConsumer.consume_with` on a fake bus): an ack follows the commit,
a retry is settled by `retry_later` and never acked, an unreachable database requeues, a message
the broker dead-lettered is kept in the store, and a paused consumer takes nothing.

The runtime commits for real here (transactional tests), so what the reader sees at ack time is
what another connection sees: committed rows, or none.
"""
import os
import socket

import pytest
from django.db import OperationalError, connections

from messaging.brokers import ATTEMPT_HEADER, BrokerError
from messaging.consumer import EventConsumer, TransientError
from messaging.consumer import runtime
from messaging.models import ConsumerState, DeadLetter, DeliveryAttempt, InboxMessage
from messaging.operations import consumer_faults_update, consumer_pause
from messaging.topology import SUBSCRIPTIONS
from shipping.models import Shipment
from tests.messaging.builders import delivery, envelope, purchase
from tests.messaging.fake_bus import FakeBus, ScriptedReader

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "shipping", "loyalty"])


@pytest.fixture
def consumer():
    return EventConsumer(SUBSCRIPTIONS["shipping"])


@pytest.fixture
def sleeps(monkeypatch):
    """The runtime's waits, written down instead of slept."""
    slept = []
    monkeypatch.setattr(runtime.time, "sleep", slept.append)
    return slept


def consume(consumer, batches, *, turns=None, on_ack=None, on_settled=None) -> ScriptedReader:
    reader = ScriptedReader(batches, turns=turns or len(batches), on_ack=on_ack)
    bus = FakeBus(reader, consumer)
    if on_settled is None:
        consumer.consume_with(bus)
    else:
        consumer.consume_with(bus, on_settled=on_settled)
    assert bus.subscribed == [("shipping", EventConsumer.PREFETCH)]
    return reader


def committed(alias: str, model, **filters) -> int:
    """How many rows of `model` match, as a second connection to the database sees them: committed ones."""
    where = " AND ".join(f"{column} = %s" for column in filters) or "1 = 1"
    other = connections.create_connection(alias)
    try:
        with other.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM {model._meta.db_table} WHERE {where}", list(filters.values()))
            return cursor.fetchone()[0]
    finally:
        if other.connection is not None:
            other.connection.close()


def purchase_message(order_id: int, **headers):
    return delivery(envelope(purchase(order_id=order_id)), headers=headers)


def test_a_batch_is_acked_only_after_its_effects_are_committed_and_visible_to_another_connection(consumer):
    first, second = purchase_message(41), purchase_message(42)

    reader = consume(consumer, [[first, second]], on_ack=lambda acked: (
        committed("shipping", Shipment), committed("shipping", InboxMessage)))

    # One transaction for the batch, committed before its one ack.
    assert reader.settled() == [("ack", first, second)]
    assert reader.seen_at_ack == [(2, 2)]
    assert reader.names() == ["resume", "fetch", "ack", "close"]


def test_a_duplicate_is_acked_too_and_applied_once(consumer):
    message = purchase_message(43)

    reader = consume(consumer, [[message], [message]])

    assert reader.settled() == [("ack", message), ("ack", message)]
    assert committed("shipping", Shipment, order_id=43) == 1
    assert list(DeliveryAttempt.objects.using("shipping").order_by("id").values_list("outcome", flat=True)) == [
        "applied", "duplicate"]


def test_a_retry_is_settled_by_retry_later_and_never_acked(consumer, sleeps):
    def label_service_down(envelope):
        raise TransientError("the label service timed out")

    consumer.handlers = {**consumer.handlers, "shop.purchase.confirmed": label_service_down}
    message = purchase_message(44)

    reader = consume(consumer, [[message]])

    [(name, retried, attempt, delay)] = reader.settled()
    assert (name, retried, attempt) == ("retry_later", message, 1)
    assert delay > 0
    assert committed("shipping", Shipment) == 0
    assert list(DeliveryAttempt.objects.using("shipping").values_list("outcome", flat=True)) == ["retry"]


def test_a_handler_bug_is_dead_lettered_and_acked_once_the_dead_letter_is_committed(consumer):
    def buggy(envelope):
        raise KeyError("shipping_address")

    consumer.handlers = {**consumer.handlers, "shop.purchase.confirmed": buggy}
    message = purchase_message(45)

    reader = consume(consumer, [[message]], on_ack=lambda acked: committed("shipping", DeadLetter))

    assert reader.settled() == [("ack", message)]
    assert reader.seen_at_ack == [1]
    assert DeadLetter.objects.using("shipping").get().reason == "handler_error"


@pytest.mark.parametrize(("broker_reason", "stored_reason"), [
    ("delivery_limit", "delivery_limit"), ("rejected", "broker_rejected"), ("expired", "broker_expired")])
def test_a_message_the_broker_dead_lettered_is_stored_as_a_dead_letter_then_acked(consumer, broker_reason,
                                                                                   stored_reason):
    message = purchase_message(46)
    message.broker_dead_reason = broker_reason

    reader = consume(consumer, [[message]], on_ack=lambda acked: committed("shipping", DeadLetter))

    assert reader.settled() == [("ack", message)]
    assert reader.seen_at_ack == [1]
    letter = DeadLetter.objects.using("shipping").get()
    assert (letter.reason, bytes(letter.body)) == (stored_reason, message.body)
    assert f"dead-lettered by the broker ({broker_reason}) from shipping.events" in letter.detail
    assert committed("shipping", Shipment) == 0  # its handler never ran


def _database_down(execute, sql, params, many, context):
    raise OperationalError("the shipping database is unreachable")


def _last_attempt(message):
    from django.conf import settings

    message.headers[ATTEMPT_HEADER] = settings.CONSUMER_MAX_ATTEMPTS - 1
    return message


@pytest.mark.parametrize("make_message", [
    pytest.param(lambda: delivery(b"not json at all"), id="the dead-letter store for a malformed message"),
    pytest.param(lambda: _last_attempt(purchase_message(47)), id="the dead-letter store on the last attempt"),
    pytest.param(lambda: _broker_dead(purchase_message(48)), id="the store for a broker's dead letter"),
])
def test_when_the_database_is_unreachable_the_delivery_is_requeued_not_acked_and_the_loop_slows_down(
        consumer, sleeps, make_message, caplog):
    message = make_message()

    with connections["shipping"].execute_wrapper(_database_down):
        reader = consume(consumer, [[message]])

    assert reader.settled() == [("requeue", message)]
    assert sleeps == [1.0]
    assert "shipping cannot reach its database (the shipping database is unreachable); requeueing" in caplog.text
    assert committed("shipping", DeadLetter) == 0


def _broker_dead(message):
    message.broker_dead_reason = "delivery_limit"
    return message


def test_a_paused_consumer_pauses_its_reader_and_fetches_nothing(consumer, sleeps):
    consumer_pause(consumer="shipping")

    reader = consume(consumer, [[purchase_message(49)]], turns=2)

    assert reader.names() == ["pause", "pause", "close"]
    assert sleeps == [EventConsumer.FETCH_TIMEOUT_SECONDS] * 2
    assert committed("shipping", Shipment) == 0


def test_a_running_consumer_resumes_its_reader_before_each_fetch_of_a_full_batch(consumer):
    reader = consume(consumer, [[], []])

    assert reader.calls == [("resume",), ("fetch", EventConsumer.FETCH_BATCH)] * 2 + [("close",)]


def test_each_settled_batch_is_reported_and_a_quiet_queue_is_not(consumer):
    settled_batches = []

    consume(consumer, [[purchase_message(50), purchase_message(51)], [], [purchase_message(52)]],
            on_settled=lambda: settled_batches.append(committed("shipping", Shipment)))

    assert settled_batches == [2, 3]


def test_the_reader_is_closed_when_the_broker_goes_away_mid_fetch(consumer):
    reader = ScriptedReader([BrokerError("connection reset")], turns=5)

    with pytest.raises(BrokerError):
        consumer.consume_with(FakeBus(reader, consumer))

    assert reader.names() == ["resume", "fetch", "close"]


def test_the_heartbeat_says_who_is_consuming_and_brings_the_faults_an_operator_set(consumer):
    consumer_faults_update(consumer="shipping", slow_ms=1)

    consume(consumer, [[]])

    state = ConsumerState.objects.using("shipping").get(consumer="shipping")
    assert state.last_heartbeat_at is not None
    assert (state.process_id, state.hostname) == (os.getpid(), socket.gethostname())
    assert consumer.faults.slow_ms == 1


def test_a_heartbeat_comes_once_per_interval_not_once_per_fetch(consumer):
    consume(consumer, [[]])
    ConsumerState.objects.using("shipping").filter(consumer="shipping").update(paused=True)

    consumer.should_stop = False
    reader = consume(consumer, [[]])  # within the interval: the pause is not read yet

    assert reader.names() == ["resume", "fetch", "close"]


def test_an_injected_reordering_handles_a_held_window_newest_first(consumer):
    consumer_faults_update(consumer="shipping", reorder_window=2)
    older, newer = purchase_message(53), purchase_message(54)

    reader = consume(consumer, [[older, newer]])

    assert reader.settled() == [("ack", newer, older)]


def test_a_quiet_queue_releases_the_deliveries_an_injected_reordering_holds(consumer):
    consumer_faults_update(consumer="shipping", reorder_window=3)
    held = purchase_message(55)

    reader = consume(consumer, [[held], []])

    assert reader.names() == ["resume", "fetch", "resume", "fetch", "ack", "close"]
    assert committed("shipping", Shipment, order_id=55) == 1


def test_a_broker_dead_letter_is_never_held_back_by_an_injected_reordering(consumer):
    consumer_faults_update(consumer="shipping", reorder_window=3)
    dead = _broker_dead(purchase_message(56))

    reader = consume(consumer, [[dead]])

    assert reader.settled() == [("ack", dead)]


def test_an_injected_duplicate_is_processed_again_as_a_duplicate_and_acked_once(consumer):
    consumer_faults_update(consumer="shipping", duplicate_share=1.0)
    message = purchase_message(57)

    reader = consume(consumer, [[message]])

    assert reader.settled() == [("ack", message)]
    assert list(DeliveryAttempt.objects.using("shipping").order_by("id").values_list("outcome", flat=True)) == [
        "applied", "duplicate"]
    assert committed("shipping", Shipment, order_id=57) == 1
