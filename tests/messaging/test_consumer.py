"""The consumer runtime: exactly-once effects from at-least-once, unordered delivery; nothing crashes it."""
import json

import pytest
from django.db import OperationalError

from loyalty.models import LoyaltyAccount, PointsTransaction
from messaging.consumer import EventConsumer, TransientError
from messaging.events import PointsAwarded
from messaging.models import DeadLetter, DeliveryAttempt, InboxMessage
from messaging.topology import SUBSCRIPTIONS
from shipping.models import Shipment
from tests.messaging.builders import RecordingRetryScheduler, cancellation, delivery, envelope, purchase

pytestmark = pytest.mark.django_db(databases=["default", "shipping", "loyalty"])


@pytest.fixture
def shipping_consumer():
    return EventConsumer(SUBSCRIPTIONS["shipping"])


@pytest.fixture
def loyalty_consumer():
    return EventConsumer(SUBSCRIPTIONS["loyalty"])


@pytest.fixture
def retries():
    return RecordingRetryScheduler()


def test_a_purchase_creates_one_shipment_and_records_the_event_in_the_inbox(shipping_consumer, retries):
    event = envelope(purchase(order_id=11))

    outcome = shipping_consumer.process(delivery(event), retries)

    assert outcome == "applied"
    shipment = Shipment.objects.get(order_id=11)
    assert (shipment.city, shipment.item_count, shipment.status) == ("Berlin", 2, "awaiting_label")
    assert InboxMessage.objects.using("shipping").filter(consumer="shipping", event_id=event.id).exists()


def test_the_same_message_delivered_twice_in_a_row_creates_one_shipment(shipping_consumer, retries):
    message = delivery(envelope(purchase(order_id=12)))

    outcomes = [shipping_consumer.process(message, retries), shipping_consumer.process(message, retries)]

    assert outcomes == ["applied", "duplicate"]
    assert Shipment.objects.filter(order_id=12).count() == 1


def test_the_same_purchase_twice_credits_the_points_once(loyalty_consumer, retries):
    message = delivery(envelope(purchase(order_id=13, customer_id=3, total="99.99")))

    loyalty_consumer.process(message, retries)
    loyalty_consumer.process(message, retries)

    assert LoyaltyAccount.objects.get(customer_id=3).balance == 99
    assert PointsTransaction.objects.filter(order_id=13).count() == 1


def test_a_copy_republished_with_a_new_event_id_still_creates_one_shipment(shipping_consumer, retries):
    # The inbox cannot catch this one (a different id); the subject's sequence number does.
    shipping_consumer.process(delivery(envelope(purchase(order_id=14), sequence=1)), retries)
    other_copy = delivery(envelope(purchase(order_id=14), sequence=1))

    assert shipping_consumer.process(other_copy, retries) == "stale"
    assert Shipment.objects.filter(order_id=14).count() == 1


def test_a_cancellation_then_its_purchase_leaves_no_active_shipment_and_no_points(shipping_consumer, loyalty_consumer, retries):
    cancel, buy = envelope(cancellation(order_id=15), sequence=2), envelope(purchase(order_id=15), sequence=1)

    assert [shipping_consumer.process(delivery(cancel), retries), shipping_consumer.process(delivery(buy), retries)] == ["early", "stale"]
    assert [loyalty_consumer.process(delivery(cancel), retries), loyalty_consumer.process(delivery(buy), retries)] == ["early", "stale"]

    shipment = Shipment.objects.get(order_id=15)
    assert shipment.status == "cancelled" and shipment.cancelled_before_purchase
    assert sum(PointsTransaction.objects.filter(order_id=15).values_list("points", flat=True)) == 0
    assert list(InboxMessage.objects.using("shipping").filter(subject="15").order_by("sequence").values_list("outcome", flat=True)) == ["stale", "early"]


def test_a_purchase_then_its_cancellation_reverses_everything(shipping_consumer, loyalty_consumer, retries):
    buy, cancel = envelope(purchase(order_id=16, total="250.00"), sequence=1), envelope(cancellation(order_id=16), sequence=2)
    for consumer in (shipping_consumer, loyalty_consumer):
        consumer.process(delivery(buy), retries)
        consumer.process(delivery(cancel), retries)

    assert Shipment.objects.get(order_id=16).status == "cancelled"
    assert sorted(PointsTransaction.objects.filter(order_id=16).values_list("points", flat=True)) == [-250, 250]
    assert LoyaltyAccount.objects.get(customer_id=7).balance == 0


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b"\xff\xfe not json", "application/cloudevents+json", "not_json"),
        (b"[1, 2, 3]", "application/cloudevents+json", "not_cloudevent"),
        (b'{"hello": "world"}', "application/cloudevents+json", "not_cloudevent"),
        (b"<xml/>", "application/xml", "unsupported_content_type"),
    ],
)
def test_a_message_that_is_not_a_cloudevent_is_dead_lettered_at_once_with_its_reason(shipping_consumer, retries, body, content_type, reason):
    outcome = shipping_consumer.process(delivery(body, content_type=content_type), retries)

    assert outcome == "dead_lettered"
    letter = DeadLetter.objects.using("shipping").get()
    assert (letter.reason, bytes(letter.body)) == (reason, body)
    assert retries.scheduled == []


def _document(**changes):
    document = envelope(purchase(order_id=17)).to_dict()
    document.update(changes)
    return json.dumps(document)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (_document(type="shop.purchase.exploded"), "unknown_type"),
        (_document(dataschema="urn:eventshop:schema:shop.purchase.confirmed:2"), "unsupported_schema"),
        (_document(data={"order_id": "seventeen"}), "invalid_data"),
        (_document(specversion="0.3"), "not_cloudevent"),
        (envelope(PointsAwarded(order_id=17, customer_id=7, points=5, balance=5)).to_json(), "no_handler"),
        (_document(padding="x" * 70_000), "too_large"),
    ],
)
def test_an_event_that_can_never_succeed_is_dead_lettered_and_the_next_one_still_flows(shipping_consumer, retries, body, reason):
    assert shipping_consumer.process(delivery(body), retries) == "dead_lettered"
    assert DeadLetter.objects.using("shipping").get().reason == reason

    assert shipping_consumer.process(delivery(envelope(purchase(order_id=18))), retries) == "applied"


def test_a_transient_failure_is_retried_later_and_then_dead_lettered_after_the_last_attempt(shipping_consumer, retries, settings):
    settings.CONSUMER_MAX_ATTEMPTS = 3
    calls = []

    def database_away(envelope):
        calls.append(envelope.id)
        raise OperationalError("the database is restarting")

    shipping_consumer.handlers = {**shipping_consumer.handlers, "shop.purchase.confirmed": database_away}
    message = delivery(envelope(purchase(order_id=19)))

    outcomes = [shipping_consumer.process(message, retries)]
    outcomes.append(shipping_consumer.process(retries.redelivery(), retries))
    outcomes.append(shipping_consumer.process(retries.redelivery(), retries))

    assert outcomes == ["retry", "retry", "dead_lettered"]
    assert [attempt for _, attempt, _ in retries.scheduled] == [1, 2]
    assert retries.scheduled[1][2] > 0
    letter = DeadLetter.objects.using("shipping").get()
    assert (letter.reason, letter.attempts, bytes(letter.body)) == ("retries_exhausted", 3, message.body)
    recorded = list(DeliveryAttempt.objects.using("shipping").order_by("id").values_list("attempt", "outcome"))
    assert recorded == [(1, "retry"), (2, "retry"), (3, "dead_lettered")]
    assert not InboxMessage.objects.using("shipping").exists()  # failed attempts leave no trace in the inbox


def test_a_transient_failure_that_passes_is_applied_once_on_the_retry(shipping_consumer, retries):
    real_handler = shipping_consumer.handlers["shop.purchase.confirmed"]
    failures = iter([TransientError("label service timed out")])

    def flaky(envelope):
        for error in failures:
            raise error
        real_handler(envelope)

    shipping_consumer.handlers = {**shipping_consumer.handlers, "shop.purchase.confirmed": flaky}

    assert shipping_consumer.process(delivery(envelope(purchase(order_id=20))), retries) == "retry"
    assert shipping_consumer.process(retries.redelivery(), retries) == "applied"
    assert Shipment.objects.filter(order_id=20).count() == 1


def test_a_handler_bug_is_dead_lettered_with_the_traceback_not_retried(shipping_consumer, retries):
    def buggy(envelope):
        raise KeyError("oops")

    shipping_consumer.handlers = {**shipping_consumer.handlers, "shop.purchase.confirmed": buggy}

    assert shipping_consumer.process(delivery(envelope(purchase(order_id=21))), retries) == "dead_lettered"
    letter = DeadLetter.objects.using("shipping").get()
    assert letter.reason == "handler_error" and "KeyError" in letter.detail
    assert retries.scheduled == []
    assert not Shipment.objects.filter(order_id=21).exists()


def test_a_message_redelivered_up_to_the_delivery_limit_is_dead_lettered_not_handled_again(shipping_consumer, retries):
    # Consumers died on it ten times (the broker's delivery count, as each adapter reads it).
    looping = delivery(envelope(purchase(order_id=30)), redeliveries=10)

    assert shipping_consumer.process(looping, retries) == "dead_lettered"
    assert DeadLetter.objects.using("shipping").get().reason == "delivery_limit"
    assert not Shipment.objects.filter(order_id=30).exists()


def test_a_broker_that_cannot_take_a_job_is_a_transient_failure_retried_later(shipping_consumer, retries):
    from kombu.exceptions import OperationalError as BrokerUnreachable

    def label_queue_down(envelope):
        raise BrokerUnreachable("[Errno 111] Connection refused")

    shipping_consumer.handlers = {**shipping_consumer.handlers, "shop.purchase.confirmed": label_queue_down}

    assert shipping_consumer.process(delivery(envelope(purchase(order_id=31))), retries) == "retry"
    assert not DeadLetter.objects.using("shipping").exists()


def test_each_delivery_is_one_info_line_with_its_type_order_outcome_and_time(shipping_consumer, retries, caplog):
    message = delivery(envelope(purchase(order_id=77)))

    with caplog.at_level("INFO", logger="messaging.consumer.processing"):
        shipping_consumer.process(message, retries)
        shipping_consumer.process(message, retries)

    lines = [record.getMessage() for record in caplog.records if record.name == "messaging.consumer.processing"]
    assert len(lines) == 2
    assert lines[0].startswith("shipping shop.purchase.confirmed shop/77 #1 attempt 1: applied in ")
    assert lines[1].startswith("shipping shop.purchase.confirmed shop/77 #1 attempt 1: duplicate in ")
    assert lines[1].endswith(" ms")
