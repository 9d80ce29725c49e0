"""Dead letters: replayed byte for byte onto the consumer's queue, still deduplicated, and the operator's command."""
import io
import json
import re
import time

import pytest
from django.core.management import CommandError, call_command

from messaging.consumer import EventConsumer
from messaging.dead_letters import (
    REPLAY_HEADER,
    BrokerUnavailable,
    dead_letter_record,
    dead_letters_get_many,
    dead_letters_replay_if_broker_reachable,
)
from messaging.events import Envelope
from messaging.models import DeadLetter
from messaging.topology import SUBSCRIPTIONS
from shipping.models import Shipment
from tests.messaging.builders import (
    FAIL_FAST_SECONDS,
    UNREACHABLE_BROKER,
    RecordingRetryScheduler,
    dead_lettered,
    delivery,
    envelope,
    messages_on_queue,
    purchase,
    purchase_delivery,
)

pytestmark = pytest.mark.django_db(databases=["default", "shipping", "loyalty"])

def run(*args) -> str:
    out = io.StringIO()
    call_command("deadletters", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


# --- replay ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        purchase_delivery(order_id=31),
        delivery(b"\xff\xfe not json \x00", headers={"ce-type": "shop.purchase.confirmed"}),
    ],
    ids=["a purchase", "bytes that are not UTF-8"],
)
def test_a_replayed_dead_letter_goes_back_to_its_queue_byte_for_byte(broker, message):
    letter = dead_lettered(message, handler_bug=True)

    assert dead_letters_replay_if_broker_reachable(consumer="shipping", dead_letters=[letter]) == 1

    [replayed] = messages_on_queue(broker)
    assert replayed.body == message.body
    assert replayed.content_type == message.content_type
    assert replayed.headers == {**message.headers, REPLAY_HEADER: letter.pk}
    letter.refresh_from_db()
    assert letter.status == "replayed" and letter.resolved_at is not None


def test_a_replayed_event_keeps_its_event_id(broker):
    original = envelope(purchase(order_id=32))
    letter = dead_lettered(delivery(original), handler_bug=True)

    dead_letters_replay_if_broker_reachable(consumer="shipping", dead_letters=[letter])

    [replayed] = messages_on_queue(broker)
    assert Envelope.from_json(replayed.body).id == original.id == letter.event_id


def test_a_dead_letter_that_failed_on_a_bug_is_applied_once_when_replayed_after_the_fix(broker):
    letter = dead_lettered(purchase_delivery(order_id=33), handler_bug=True)
    assert not Shipment.objects.filter(order_id=33).exists()

    dead_letters_replay_if_broker_reachable(consumer="shipping", dead_letters=[letter])
    [replayed] = messages_on_queue(broker)

    fixed_consumer = EventConsumer(SUBSCRIPTIONS["shipping"])
    assert fixed_consumer.process(replayed, RecordingRetryScheduler()) == "applied"
    assert Shipment.objects.filter(order_id=33).count() == 1


def test_a_replayed_message_that_was_in_fact_applied_is_still_deduplicated(broker):
    message = purchase_delivery(order_id=34)
    letter = dead_lettered(message, handler_bug=True)  # a buggy consumer gave up on it...
    consumer = EventConsumer(SUBSCRIPTIONS["shipping"])
    assert consumer.process(message, RecordingRetryScheduler()) == "applied"  # ...a fixed one applied the redelivery

    dead_letters_replay_if_broker_reachable(consumer="shipping", dead_letters=[letter])
    [replayed] = messages_on_queue(broker)

    assert consumer.process(replayed, RecordingRetryScheduler()) == "duplicate"
    assert Shipment.objects.filter(order_id=34).count() == 1


def test_a_dead_letter_recorded_from_an_applied_body_is_deduplicated_when_replayed(broker):
    message = purchase_delivery(order_id=35)
    consumer = EventConsumer(SUBSCRIPTIONS["shipping"])
    assert consumer.process(message, RecordingRetryScheduler()) == "applied"
    letter = dead_letter_record(
        consumer="shipping", database="shipping", body=message.body, content_type=message.content_type,
        routing_key=message.routing_key, headers=message.headers, reason="handler_error", detail="a copy",
        attempts=1, envelope=Envelope.from_json(message.body),
    )

    dead_letters_replay_if_broker_reachable(consumer="shipping", dead_letters=[letter])
    [replayed] = messages_on_queue(broker)

    assert consumer.process(replayed, RecordingRetryScheduler()) == "duplicate"
    assert Shipment.objects.filter(order_id=35).count() == 1


def test_only_pending_dead_letters_are_replayed(broker):
    replayed_before = dead_lettered(purchase_delivery(order_id=36), handler_bug=True)
    dead_letters_replay_if_broker_reachable(consumer="shipping", dead_letters=[replayed_before])
    messages_on_queue(broker)
    replayed_before.refresh_from_db()
    pending = dead_lettered(purchase_delivery(order_id=37), handler_bug=True)

    assert dead_letters_replay_if_broker_reachable(consumer="shipping", dead_letters=[replayed_before, pending]) == 1
    assert [Envelope.from_json(message.body).subject for message in messages_on_queue(broker)] == ["37"]


def test_replaying_while_the_broker_is_unreachable_fails_fast_and_marks_nothing(settings):
    letter = dead_lettered(purchase_delivery(order_id=38), handler_bug=True)
    settings.BROKER_URL = UNREACHABLE_BROKER

    started = time.monotonic()
    with pytest.raises(BrokerUnavailable, match="cannot reach the broker.*nothing was replayed"):
        dead_letters_replay_if_broker_reachable(consumer="shipping", dead_letters=[letter])

    assert time.monotonic() - started < FAIL_FAST_SECONDS
    letter.refresh_from_db()
    assert letter.status == "pending"


def test_getting_dead_letters_by_id_names_every_id_that_does_not_exist():
    letter = dead_lettered(delivery(b"not json"))

    assert dead_letters_get_many(consumer="shipping", ids=[letter.pk]) == [letter]
    with pytest.raises(DeadLetter.DoesNotExist, match=f"no dead letter {letter.pk + 1}, {letter.pk + 2} for shipping"):
        dead_letters_get_many(consumer="shipping", ids=[letter.pk + 2, letter.pk, letter.pk + 1])


# --- the command: list and show ------------------------------------------------------------------------


def test_the_list_shows_pending_dead_letters_as_a_table_newest_first():
    not_json = dead_lettered(delivery(b"not json"))
    bug = dead_lettered(purchase_delivery(order_id=41), handler_bug=True)

    lines = run("list", "shipping").splitlines()

    assert lines[0].split() == ["ID", "CREATED", "REASON", "EVENT", "TYPE", "SUBJECT", "ATTEMPTS", "STATUS"]
    assert [line.split()[0] for line in lines[1:]] == [str(bug.pk), str(not_json.pk)]
    bug_row = lines[1].split()
    assert bug_row[3:] == ["handler_error", "shop.purchase.confirmed", "41", "1", "pending"]
    assert lines[2].split()[3:] == ["not_json", "-", "-", "1", "pending"]


def test_the_list_filters_by_status_reason_and_event_type():
    dead_lettered(delivery(b"not json"))
    bug = dead_lettered(purchase_delivery(order_id=42), handler_bug=True)
    discarded = DeadLetter.objects.using("shipping").create(consumer="shipping", reason="handler_error",
                                                           event_type="shop.order.cancelled", status="discarded")

    def ids(*options):
        return [line.split()[0] for line in run("list", "shipping", *options).splitlines()[1:]]

    assert ids("--reason", "handler_error") == [str(bug.pk)]
    assert ids("--type", "shop.purchase.confirmed") == [str(bug.pk)]
    assert ids("--status", "discarded") == [str(discarded.pk)]
    assert ids("--status", "all", "--reason", "handler_error") == [str(discarded.pk), str(bug.pk)]


def test_the_list_says_so_when_there_is_nothing_and_when_the_limit_hides_rows():
    assert run("list", "loyalty").strip() == "No pending dead letters for loyalty."

    dead_lettered(delivery(b"one"))
    dead_lettered(delivery(b"two"))

    output = run("list", "shipping", "--limit", "1").splitlines()
    assert len(output) == 3 and output[-1] == "(1 of 2 shown; raise --limit to see more)"


def test_show_prints_every_field_the_headers_and_the_body():
    message = purchase_delivery(order_id=43)
    letter = dead_lettered(message, handler_bug=True)

    output = run("show", "shipping", str(letter.pk))

    fields = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in output.split("\n\n")[0].splitlines())
    assert fields == {
        "id": str(letter.pk), "consumer": "shipping", "status": "pending", "reason": "handler_error",
        "event id": str(letter.event_id), "event type": "shop.purchase.confirmed", "subject": "43", "attempts": "1",
        "created at": letter.created_at.isoformat(), "resolved at": "-", "routing key": message.routing_key,
        "content type": "application/cloudevents+json",
    }
    assert "KeyError: 'shipping_address'" in output  # the detail, traceback included
    assert "  correlation-id: order-43" in output
    assert f"body ({len(message.body)} bytes):\n  {message.body.decode()}" in output


def test_show_says_a_body_that_is_not_utf8_is_binary_and_previews_it_in_hex():
    letter = dead_lettered(delivery(b"\xff\xfe not json"))

    output = run("show", "shipping", str(letter.pk))

    assert "body: (binary, 11 bytes, not valid UTF-8)" in output
    assert "hex: ff fe 20 6e 6f 74 20 6a 73 6f 6e" in output
    assert "\ufffd\ufffd not json" in output


def test_an_unknown_consumer_or_dead_letter_id_is_a_clear_error():
    with pytest.raises(CommandError, match="unknown consumer 'billing'; choose one of shipping, loyalty"):
        run("list", "billing")
    with pytest.raises(CommandError, match="no dead letter 999 for shipping"):
        run("show", "shipping", "999")
    letter = dead_lettered(delivery(b"not json"))
    with pytest.raises(CommandError, match="no dead letter 998, 999 for shipping"):
        run("discard", "shipping", str(letter.pk), "999", "998")
    assert DeadLetter.objects.using("shipping").get().status == "pending"


# --- the command: replay and discard --------------------------------------------------------------------


def test_replay_by_id_puts_the_messages_back_and_says_how_many(broker):
    first = dead_lettered(purchase_delivery(order_id=44), handler_bug=True)
    second = dead_lettered(purchase_delivery(order_id=45), handler_bug=True)

    output = run("replay", "shipping", str(first.pk), str(second.pk))

    assert output.strip() == "Replayed 2 dead letters to shipping.events."
    assert sorted(json.loads(message.body)["subject"] for message in messages_on_queue(broker)) == ["44", "45"]
    assert set(DeadLetter.objects.using("shipping").values_list("status", flat=True)) == {"replayed"}


def test_replay_all_takes_only_the_pending_ones_matching_the_filters(broker):
    bug = dead_lettered(purchase_delivery(order_id=46), handler_bug=True)
    not_json = dead_lettered(delivery(b"not json"))

    assert run("replay", "shipping", "--all", "--reason", "handler_error").strip() == "Replayed 1 dead letter to shipping.events."
    assert run("replay", "shipping", "--all", "--type", "shop.purchase.confirmed").strip() == "Replayed 0 dead letters to shipping.events."

    assert [json.loads(message.body)["subject"] for message in messages_on_queue(broker)] == ["46"]
    statuses = dict(DeadLetter.objects.using("shipping").values_list("pk", "status"))
    assert statuses == {bug.pk: "replayed", not_json.pk: "pending"}


def test_replaying_one_that_is_not_pending_replays_nothing_and_says_why(broker):
    letter = dead_lettered(delivery(b"not json"))
    run("discard", "shipping", str(letter.pk))
    err = io.StringIO()

    call_command("deadletters", "replay", "shipping", str(letter.pk), stdout=(out := io.StringIO()), stderr=err)

    assert out.getvalue().strip() == "Replayed 0 dead letters to shipping.events."
    assert err.getvalue().strip() == f"skipped {letter.pk}: already discarded"
    assert messages_on_queue(broker) == []


def test_replay_with_the_broker_unreachable_is_an_error_and_marks_nothing(settings):
    letter = dead_lettered(purchase_delivery(order_id=47), handler_bug=True)
    settings.BROKER_URL = UNREACHABLE_BROKER

    started = time.monotonic()
    with pytest.raises(CommandError, match=r"cannot reach the broker at amqp://guest:\*\*@127.0.0.1:1//"):
        run("replay", "shipping", str(letter.pk))

    assert time.monotonic() - started < FAIL_FAST_SECONDS
    letter.refresh_from_db()
    assert letter.status == "pending"


def test_discard_by_id_or_all_marks_pending_ones_discarded():
    first = dead_lettered(delivery(b"not json"))
    bug = dead_lettered(purchase_delivery(order_id=48), handler_bug=True)
    other = dead_lettered(delivery(b"<xml/>", content_type="application/xml"))

    assert run("discard", "shipping", str(first.pk)).strip() == "Discarded 1 dead letter."
    assert run("discard", "shipping", "--all", "--type", "shop.purchase.confirmed").strip() == "Discarded 1 dead letter."

    statuses = dict(DeadLetter.objects.using("shipping").values_list("pk", "status"))
    assert statuses == {first.pk: "discarded", bug.pk: "discarded", other.pk: "pending"}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["replay", "shipping"], "give the ids of the dead letters, or --all"),
        (["discard", "shipping", "{id}", "--all"], "give dead letter ids or --all, not both"),
        (["replay", "shipping", "{id}", "--reason", "not_json"], "--reason and --type narrow --all"),
        (["list", "shipping", "--limit", "0"], "--limit must be at least 1"),
    ],
)
def test_an_ambiguous_selection_is_refused_before_anything_changes(arguments, message):
    letter = dead_lettered(delivery(b"not json"))

    with pytest.raises(CommandError, match=message):
        run(*(argument.format(id=letter.pk) for argument in arguments))

    letter.refresh_from_db()
    assert letter.status == "pending"
