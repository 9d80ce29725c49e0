"""The staff dead-letter API under /api/messaging/: list, show, replay, discard, one at a time or in bulk."""
import base64
import json
import time

import pytest

from messaging.models import DeadLetter
from tests.messaging.builders import delivery
from tests.messaging.builders import (
    FAIL_FAST_SECONDS,
    UNREACHABLE_BROKER,
    dead_lettered,
    messages_on_queue,
    purchase_delivery,
)

pytestmark = pytest.mark.django_db(databases=["default", "shipping", "loyalty"])

LIST = "/api/messaging/dead-letters/"


def one(letter_or_id, action: str = "") -> str:
    letter_id = getattr(letter_or_id, "pk", letter_or_id)
    return f"/api/messaging/dead-letters/shipping/{letter_id}/" + (f"{action}/" if action else "")


def bulk(action: str, consumer: str = "shipping") -> str:
    return f"/api/messaging/dead-letters/{consumer}/{action}/"


def status_of(letter) -> str:
    letter.refresh_from_db()
    return letter.status



@pytest.fixture
def letter():
    return dead_lettered(purchase_delivery(order_id=51), handler_bug=True)


# --- who may call it -------------------------------------------------------------------------------------

ENDPOINTS = [
    ("get", lambda letter: f"{LIST}?consumer=shipping"),
    ("get", lambda letter: one(letter)),
    ("post", lambda letter: one(letter, "replay")),
    ("post", lambda letter: one(letter, "discard")),
    ("post", lambda letter: bulk("replay")),
    ("post", lambda letter: bulk("discard")),
]


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_an_anonymous_caller_is_asked_to_authenticate(api_client, letter, method, url):
    response = getattr(api_client, method)(url(letter), {"all": True}, format="json")

    assert response.status_code == 401
    assert response.json()["code"] == "NotAuthenticated"
    assert status_of(letter) == "pending"


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_a_customer_is_refused_because_dead_letters_are_for_staff(customer_client, letter, method, url):
    response = getattr(customer_client, method)(url(letter), {"all": True}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "PermissionDenied"
    assert status_of(letter) == "pending"


# --- list and show ----------------------------------------------------------------------------------------


def test_the_list_shows_pending_dead_letters_newest_first_with_the_first_line_of_the_detail(staff_client):
    not_json = dead_lettered(delivery(b"not json"))
    bug = dead_lettered(purchase_delivery(order_id=52), handler_bug=True)

    response = staff_client.get(LIST, {"consumer": "shipping"})

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [item["id"] for item in body["results"]] == [bug.pk, not_json.pk]
    item = body["results"][0]
    assert item == {
        "id": bug.pk, "consumer": "shipping", "event_id": str(bug.event_id), "event_type": "shop.purchase.confirmed",
        "subject": "52", "reason": "handler_error", "detail": "KeyError: 'shipping_address'", "attempts": 1,
        "status": "pending", "created_at": item["created_at"], "resolved_at": None,
    }
    assert "\n" in bug.detail  # the traceback is there, only not in the list


def test_the_list_filters_by_status_reason_and_type_and_is_paginated(staff_client):
    not_json = dead_lettered(delivery(b"not json"))
    bug = dead_lettered(purchase_delivery(order_id=53), handler_bug=True)
    discarded = DeadLetter.objects.using("shipping").create(consumer="shipping", reason="handler_error",
                                                           event_type="shop.order.cancelled", status="discarded")

    def ids(**filters):
        response = staff_client.get(LIST, {"consumer": "shipping", **filters})
        assert response.status_code == 200
        return [item["id"] for item in response.json()["results"]]

    assert ids(reason="not_json") == [not_json.pk]
    assert ids(type="shop.purchase.confirmed") == [bug.pk]
    assert ids(status="discarded") == [discarded.pk]
    assert ids(status="all") == [discarded.pk, bug.pk, not_json.pk]
    assert ids(status="all", limit=1, offset=1) == [bug.pk]


def test_the_list_shows_only_the_dead_letters_of_the_consumer_asked_for(staff_client, letter):
    response = staff_client.get(LIST, {"consumer": "loyalty"})

    assert response.status_code == 200 and response.json()["count"] == 0


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({}, "This field is required."),
        ({"consumer": "billing"}, '"billing" is not a valid choice.'),
        ({"consumer": "shipping", "status": "lost"}, '"lost" is not a valid choice.'),
    ],
)
def test_the_list_needs_a_known_consumer_and_status(staff_client, query, reason):
    response = staff_client.get(LIST, query)

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert reason in errors.get("consumer", []) + errors.get("status", [])


def test_a_dead_letter_shows_its_headers_and_its_body_as_text_and_as_exact_bytes(staff_client):
    message = delivery(b'{"oops": "\xff"}', headers={"ce-type": "shop.purchase.confirmed", "x-eventshop-failed-attempts": 2})
    letter = dead_lettered(message)

    response = staff_client.get(one(letter))

    assert response.status_code == 200
    body = response.json()
    assert base64.b64decode(body["body_base64"]) == message.body
    assert body["body"] == '{"oops": "\ufffd"}'
    assert body["headers"] == message.headers
    assert (body["reason"], body["attempts"], body["content_type"]) == ("not_json", 3, "application/cloudevents+json")
    assert body["detail"] == letter.detail and body["routing_key"] == ""


@pytest.mark.parametrize(
    "url",
    [
        lambda letter: one(letter.pk + 1),
        lambda letter: f"/api/messaging/dead-letters/loyalty/{letter.pk}/",  # another consumer's store
        lambda letter: f"/api/messaging/dead-letters/billing/{letter.pk}/",
        lambda letter: one(letter.pk + 1, "replay"),
        lambda letter: one(letter.pk + 1, "discard"),
        lambda letter: bulk("discard", consumer="billing"),
    ],
)
def test_an_unknown_consumer_or_dead_letter_is_not_found(staff_client, letter, url):
    response = (staff_client.post if url(letter).endswith(("replay/", "discard/")) else staff_client.get)(
        url(letter), {"all": True}, format="json")

    assert response.status_code == 404
    assert response.json()["code"] == "NotFound"
    assert status_of(letter) == "pending"


# --- replay and discard one -------------------------------------------------------------------------------


def test_replaying_one_puts_it_back_on_the_queue_unchanged_and_answers_the_updated_record(staff_client, broker, letter):
    response = staff_client.post(one(letter, "replay"))

    assert response.status_code == 200
    assert response.json()["status"] == "replayed" and response.json()["resolved_at"] is not None
    [message] = messages_on_queue(broker)
    assert message.body == bytes(letter.body)
    assert status_of(letter) == "replayed"


def test_replaying_or_discarding_one_that_is_not_pending_is_a_conflict(staff_client, broker, letter):
    assert staff_client.post(one(letter, "replay")).status_code == 200
    messages_on_queue(broker)

    again = staff_client.post(one(letter, "replay"))
    discard = staff_client.post(one(letter, "discard"))

    assert (again.status_code, discard.status_code) == (409, 409)
    assert again.json() == {
        "detail": f"Dead letter {letter.pk} is already replayed; only pending ones can be replayed.",
        "code": "DeadLetterNotPending", "errors": {},
    }
    assert discard.json()["detail"] == f"Dead letter {letter.pk} is already replayed; only pending ones can be discarded."
    assert messages_on_queue(broker) == []
    assert status_of(letter) == "replayed"


def test_discarding_one_marks_it_discarded_and_a_discarded_one_cannot_be_replayed(staff_client, broker, letter):
    response = staff_client.post(one(letter, "discard"))

    assert response.status_code == 200 and response.json()["status"] == "discarded"
    assert staff_client.post(one(letter, "replay")).status_code == 409
    assert messages_on_queue(broker) == []
    assert status_of(letter) == "discarded"


def test_replaying_one_while_the_broker_is_unreachable_answers_503_fast_and_marks_nothing(staff_client, settings, letter):
    settings.BROKER_URL = UNREACHABLE_BROKER

    started = time.monotonic()
    response = staff_client.post(one(letter, "replay"))

    assert time.monotonic() - started < FAIL_FAST_SECONDS
    assert response.status_code == 503
    assert response.json()["code"] == "BrokerUnavailable"
    assert "cannot reach the broker" in response.json()["detail"] and "guest:guest" not in response.json()["detail"]
    assert status_of(letter) == "pending"


# --- in bulk ----------------------------------------------------------------------------------------------


def test_replaying_by_ids_replays_the_pending_ones_and_skips_the_rest(staff_client, broker):
    first = dead_lettered(purchase_delivery(order_id=54), handler_bug=True)
    second = dead_lettered(purchase_delivery(order_id=55), handler_bug=True)
    discarded = dead_lettered(purchase_delivery(order_id=56), handler_bug=True)
    staff_client.post(one(discarded, "discard"))

    response = staff_client.post(bulk("replay"), {"ids": [first.pk, second.pk, discarded.pk]}, format="json")

    assert response.status_code == 200 and response.json() == {"replayed": 2}
    assert sorted(json.loads(message.body)["subject"] for message in messages_on_queue(broker)) == ["54", "55"]
    assert [status_of(first), status_of(second), status_of(discarded)] == ["replayed", "replayed", "discarded"]


def test_replaying_by_filter_replays_only_the_pending_ones_that_match(staff_client, broker):
    bug = dead_lettered(purchase_delivery(order_id=57), handler_bug=True)
    not_json = dead_lettered(delivery(b"not json"))

    response = staff_client.post(bulk("replay"), {"reason": "handler_error", "type": "shop.purchase.confirmed"}, format="json")

    assert response.json() == {"replayed": 1}
    assert [json.loads(message.body)["subject"] for message in messages_on_queue(broker)] == ["57"]
    assert (status_of(bug), status_of(not_json)) == ("replayed", "pending")


def test_discarding_all_discards_every_pending_one(staff_client):
    letters = [dead_lettered(delivery(b"not json")), dead_lettered(purchase_delivery(order_id=58), handler_bug=True)]

    response = staff_client.post(bulk("discard"), {"all": True}, format="json")

    assert response.status_code == 200 and response.json() == {"discarded": 2}
    assert [status_of(letter) for letter in letters] == ["discarded", "discarded"]


@pytest.mark.parametrize(
    ("payload", "field", "reason"),
    [
        ({}, "non_field_errors", "Say which dead letters: ids, reason, type, or all: true."),
        ({"all": False}, "non_field_errors", "Say which dead letters: ids, reason, type, or all: true."),
        ({"ids": [1], "reason": "not_json"}, "non_field_errors", "Give either ids or a filter (reason, type, all), not both."),
        ({"ids": []}, "ids", "This list may not be empty."),
        ({"ids": ["one"]}, "ids.0", "A valid integer is required."),
    ],
)
def test_a_bulk_request_must_say_which_dead_letters_unambiguously(staff_client, letter, payload, field, reason):
    response = staff_client.post(bulk("discard"), payload, format="json")

    assert response.status_code == 400
    assert response.json()["errors"][field] == [reason]
    assert status_of(letter) == "pending"


def test_a_bulk_request_naming_an_unknown_id_changes_nothing(staff_client, broker, letter):
    response = staff_client.post(bulk("replay"), {"ids": [letter.pk, letter.pk + 1]}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"ids": [f"no dead letter {letter.pk + 1} for shipping"]}
    assert messages_on_queue(broker) == []
    assert status_of(letter) == "pending"


def test_replaying_in_bulk_while_the_broker_is_unreachable_answers_503_and_marks_nothing(staff_client, settings, letter):
    settings.BROKER_URL = UNREACHABLE_BROKER

    response = staff_client.post(bulk("replay"), {"all": True}, format="json")

    assert response.status_code == 503 and response.json()["code"] == "BrokerUnavailable"
    assert status_of(letter) == "pending"
