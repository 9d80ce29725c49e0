"""The consumer panel the dashboards embed: counts from the real consumer runtime, depths from the
broker, pause and resume, and the dead letters with inspect, replay and discard."""
import html as html_module
import json
import re
from datetime import timedelta

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from messaging.consumer import EventConsumer
from messaging.dead_letters import REPLAY_HEADER
from messaging.models import ConsumerState, DeadLetter, DeliveryAttempt
from messaging.outbox import outbox_event_record, outbox_publish
from messaging.topology import event_bus_connect
from messaging.topology import SUBSCRIPTIONS
from tests.messaging.builders import RecordingRetryScheduler, delivery, envelope, purchase
from tests.messaging.builders import (
    UNREACHABLE_BROKER,
    dead_lettered,
    messages_on_queue,
    purchase_delivery,
)

pytestmark = pytest.mark.django_db(databases=["default", "shipping", "loyalty"])


@pytest.fixture(autouse=True)
def quiet_broker(settings):
    # The panel asks the broker for queue depths: never the demo's broker file under var/.
    settings.BROKER_URL = "memory://"



@pytest.fixture
def staff_browser(client, staff):
    client.force_login(staff)
    return client


def panel_url(consumer: str = "shipping") -> str:
    return reverse("consumers:consumer_panel", args=[consumer])


def panel_html(client, consumer: str = "shipping") -> str:
    response = client.get(panel_url(consumer), {"next": "/dashboards/shipping/"})
    assert response.status_code == 200
    return response.content.decode()


def count(html: str, outcome: str, window: str) -> int:
    return int(re.search(rf'data-outcome="{outcome}" data-window="{window}">(\d+)<', html).group(1))


def state_of(consumer: str) -> ConsumerState:
    return ConsumerState.objects.using(SUBSCRIPTIONS[consumer].database).get(consumer=consumer)


def status_of(letter: DeadLetter) -> str:
    letter.refresh_from_db()
    return letter.status


# --- who may see and use it ------------------------------------------------------------------------


STAFF_ONLY = [
    ("get", lambda: reverse("consumers:consumer", args=["shipping"])),
    ("get", lambda: panel_url("shipping")),
    ("post", lambda: reverse("consumers:consumer_pause", args=["shipping"])),
    ("post", lambda: reverse("consumers:consumer_resume", args=["shipping"])),
    ("post", lambda: reverse("consumers:dead_letters_replay_all", args=["shipping"])),
    ("post", lambda: reverse("consumers:dead_letters_discard_all", args=["shipping"])),
]


@pytest.mark.parametrize(("method", "url"), STAFF_ONLY, ids=[f"{m} {i}" for i, (m, _) in enumerate(STAFF_ONLY)])
def test_anonymous_visitors_are_sent_to_log_in_and_customers_are_refused(client, customer, method, url):
    anonymous = getattr(client, method)(url())
    assert anonymous.status_code == 302 and anonymous["Location"].startswith(reverse("shop:login"))

    client.force_login(customer)
    assert getattr(client, method)(url()).status_code == 403
    assert not ConsumerState.objects.using("shipping").filter(consumer="shipping", paused=True).exists()


def test_a_customer_cannot_inspect_replay_or_discard_a_dead_letter(client, customer):
    letter = dead_lettered(delivery(b"not json"))
    client.force_login(customer)

    assert client.get(reverse("consumers:dead_letter", args=["shipping", letter.pk])).status_code == 403
    assert client.post(reverse("consumers:dead_letter_replay", args=["shipping", letter.pk])).status_code == 403
    assert client.post(reverse("consumers:dead_letter_discard", args=["shipping", letter.pk])).status_code == 403
    assert status_of(letter) == "pending"


def test_an_unknown_consumer_is_not_found(staff_browser):
    assert staff_browser.get(panel_url("billing")).status_code == 404
    assert staff_browser.post(reverse("consumers:consumer_pause", args=["billing"])).status_code == 404


# --- what it shows ---------------------------------------------------------------------------------


def test_the_panel_counts_what_the_real_consumer_runtime_did(staff_browser):
    consumer = EventConsumer(SUBSCRIPTIONS["shipping"])
    retries = RecordingRetryScheduler()
    message = delivery(envelope(purchase(order_id=61)))
    consumer.process(message, retries)
    consumer.process(message, retries)
    consumer.process(delivery(b"not json"), retries)

    html = panel_html(staff_browser)

    for window in ("total", "last-minute"):
        assert count(html, "applied", window) == 1
        assert count(html, "duplicate", window) == 1
        assert count(html, "dead_lettered", window) == 1
        assert count(html, "stale", window) == count(html, "early", window) == count(html, "retry", window) == 0
    assert re.findall(r'class="outcome outcome-\w+" data-outcome>(\w+)<', html) == ["dead_lettered", "duplicate", "applied"]
    assert re.search(r"data-pending-dead-letters>1<", html)
    assert "not_json" in html


def test_the_last_minute_leaves_out_what_happened_before_it_and_the_total_does_not(staff_browser):
    consumer = EventConsumer(SUBSCRIPTIONS["shipping"])
    consumer.process(delivery(envelope(purchase(order_id=60))), RecordingRetryScheduler())
    DeliveryAttempt.objects.using("shipping").update(created_at=timezone.now() - timedelta(minutes=5))
    consumer.process(delivery(envelope(purchase(order_id=61))), RecordingRetryScheduler())

    html = panel_html(staff_browser)

    assert (count(html, "applied", "last-minute"), count(html, "applied", "total")) == (1, 2)


def test_the_last_events_show_type_subject_sequence_attempt_and_worker(staff_browser):
    consumer = EventConsumer(SUBSCRIPTIONS["shipping"])
    consumer.process(delivery(envelope(purchase(order_id=62), sequence=1)), RecordingRetryScheduler())

    html = panel_html(staff_browser)

    row = re.search(r'<tr data-attempt="\d+">(.*?)</tr>', html, re.S).group(1)
    cells = [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    assert cells[1:6] == ["shop.purchase.confirmed", "62", "1", "1", "applied"]
    assert cells[7] == consumer.worker


def test_the_panel_draws_its_chart_from_the_per_minute_counts(staff_browser):
    consumer = EventConsumer(SUBSCRIPTIONS["shipping"])
    consumer.process(delivery(envelope(purchase(order_id=63))), RecordingRetryScheduler())

    html = panel_html(staff_browser)

    chart = json.loads(re.search(r'<script type="application/json">(.*?)</script>', html, re.S).group(1))
    series = {entry["name"]: entry["points"] for entry in chart["series"]}
    assert len(series["processed"]) == 30
    assert series["processed"][-1][1] == 1 and sum(value for _, value in series["dead-lettered"]) == 0
    assert series["processed"][-1][0] - series["processed"][-2][0] == 60_000  # epoch milliseconds, a minute apart


def test_the_queue_depth_comes_from_the_broker_and_the_embedded_one_reports_no_consumers(staff_browser, settings, tmp_path):
    settings.BROKER_URL = f"eventshop-sqlite:///{tmp_path / 'b.sqlite3'}"
    with event_bus_connect() as bus, transaction.atomic():
        messages = [outbox_event_record(purchase(order_id=order_id), using="default") for order_id in (64, 65)]
        outbox_publish(using="default", messages=messages, bus=bus)

    html = panel_html(staff_browser)

    queues = dict(re.findall(r'<tr data-queue="([^"]+)">.*?<td class="num" data-ready>(.*?)</td>', html, re.S))
    assert queues == {"shipping.events": "2", "shipping.events.dead": "0"}
    assert re.findall(r"<td class=\"num\" data-consumers>(.*?)</td>", html) == ["—", "—"]
    assert "Embedded (SQLite) does not report consumers" in html


def test_the_panel_says_so_when_the_broker_cannot_be_reached(staff_browser, settings):
    settings.BROKER_URL = UNREACHABLE_BROKER

    html = panel_html(staff_browser)

    assert "the broker cannot be reached" in html
    assert 'data-queue="' not in html


def test_the_panel_tells_a_live_consumer_from_one_that_may_be_down(staff_browser):
    ConsumerState.objects.using("loyalty").create(consumer="loyalty", last_heartbeat_at=timezone.now() - timedelta(seconds=3))
    ConsumerState.objects.using("loyalty").create(consumer="loyalty-bonus",
                                                  last_heartbeat_at=timezone.now() - timedelta(minutes=5))

    alive, silent, never = (panel_html(staff_browser, name) for name in ("loyalty", "loyalty-bonus", "shop"))

    assert 'data-liveness="alive"' in alive and re.search(r"last heartbeat [34] s ago", alive)
    assert 'data-liveness="down"' in silent and "down?" in silent and "last heartbeat 5 min ago" in silent
    assert 'data-liveness="down"' in never and "never reported" in never


def test_the_panel_names_its_queue_and_the_routing_keys_it_is_bound_by(staff_browser):
    html = panel_html(staff_browser, "loyalty-bonus")

    assert "<code>loyalty.large-orders</code>" in html
    assert "<code>shop.purchase.confirmed.*.large</code>" in html


def test_the_panel_page_for_a_consumer_polls_its_own_partial(staff_browser):
    page = staff_browser.get(reverse("consumers:consumer", args=["shop"])).content.decode()

    assert f'data-panel-url="{panel_url("shop")}?next=%2Fdashboards%2Fconsumers%2Fshop%2F"' in page
    assert "messaging/dashboard.js" in page and "messaging/charts.js" in page
    assert not re.findall(r'(?:src|href)="(?:https?:)?//', page)  # nothing from a CDN


# --- pause and resume ------------------------------------------------------------------------------


def test_pausing_a_consumer_sets_its_state_in_its_own_database_and_returns_to_the_dashboard(staff_browser):
    response = staff_browser.post(reverse("consumers:consumer_pause", args=["loyalty-bonus"]),
                                  {"next": "/dashboards/loyalty/"})

    assert response.status_code == 302 and response["Location"] == "/dashboards/loyalty/#consumer-loyalty-bonus"
    assert state_of("loyalty-bonus").paused
    assert not ConsumerState.objects.using("default").filter(consumer="loyalty-bonus").exists()
    html = panel_html(staff_browser, "loyalty-bonus")
    assert "Resume</button>" in html and "Pause</button>" not in html


def test_resuming_ends_a_pause_and_a_timed_pause_alike(staff_browser):
    ConsumerState.objects.using("shipping").create(consumer="shipping", paused=True,
                                                   paused_until=timezone.now() + timedelta(minutes=5))
    assert "paused until" in panel_html(staff_browser)

    staff_browser.post(reverse("consumers:consumer_resume", args=["shipping"]))

    state = state_of("shipping")
    assert (state.paused, state.paused_until) == (False, None)
    assert "Pause</button>" in panel_html(staff_browser)


def test_a_next_address_on_another_site_is_ignored(staff_browser):
    response = staff_browser.post(reverse("consumers:consumer_pause", args=["shipping"]),
                                  {"next": "https://evil.example/phish"})

    assert response["Location"] == f"{reverse('consumers:consumer', args=['shipping'])}#consumer-shipping"


# --- dead letters ----------------------------------------------------------------------------------


def test_the_panel_lists_pending_dead_letters_with_inspect_replay_and_discard(staff_browser):
    pending = dead_lettered(purchase_delivery(order_id=66), handler_bug=True)
    discarded = dead_lettered(delivery(b"not json"))
    DeadLetter.objects.using("shipping").filter(pk=discarded.pk).update(status="discarded")

    html = panel_html(staff_browser)

    assert re.findall(r'<tr data-dead-letter="(\d+)">', html) == [str(pending.pk)]
    for name in ("dead_letter", "dead_letter_replay", "dead_letter_discard"):
        assert reverse(f"consumers:{name}", args=["shipping", pending.pk]) in html
    assert reverse("consumers:dead_letters_replay_all", args=["shipping"]) in html


def test_inspecting_a_dead_letter_shows_its_detail_headers_and_original_body(staff_browser):
    message = purchase_delivery(order_id=67)
    letter = dead_lettered(message, handler_bug=True)

    html = staff_browser.get(reverse("consumers:dead_letter", args=["shipping", letter.pk])).content.decode()

    body = re.search(r"<pre class=\"code-block\" data-body>(.*?)</pre>", html, re.S).group(1)
    assert html_module.unescape(body) == message.body.decode()
    assert "KeyError: &#x27;shipping_address&#x27;" in html
    assert "<code>correlation-id</code></th><td><code>order-67</code>" in html
    assert str(letter.event_id) in html and "handler_error" in html


def test_inspecting_a_body_that_is_not_utf8_shows_it_in_hex(staff_browser):
    letter = dead_lettered(delivery(b"\xff\xfe not json"))

    html = staff_browser.get(reverse("consumers:dead_letter", args=["shipping", letter.pk])).content.decode()

    assert "not valid UTF-8" in html
    assert "ff fe 20 6e 6f 74 20 6a 73 6f 6e" in html


def test_replaying_a_dead_letter_puts_the_original_bytes_back_on_its_queue(staff_browser, broker):
    message = purchase_delivery(order_id=68)
    letter = dead_lettered(message, handler_bug=True)

    response = staff_browser.post(reverse("consumers:dead_letter_replay", args=["shipping", letter.pk]),
                                  {"next": "/dashboards/shipping/"}, follow=True)

    [replayed] = messages_on_queue(broker)
    assert replayed.body == message.body
    assert replayed.headers == {**message.headers, REPLAY_HEADER: letter.pk}
    assert status_of(letter) == "replayed"
    assert f"Replayed dead letter {letter.pk} to shipping.events." in response.content.decode()


def test_replaying_while_the_broker_is_unreachable_says_so_and_keeps_the_dead_letter(staff_browser, settings):
    letter = dead_lettered(purchase_delivery(order_id=69), handler_bug=True)
    settings.BROKER_URL = UNREACHABLE_BROKER

    response = staff_browser.post(reverse("consumers:dead_letter_replay", args=["shipping", letter.pk]), follow=True)

    html = response.content.decode()
    assert f"Dead letter {letter.pk} was not replayed: cannot reach the broker" in html
    assert "nothing was replayed" in html
    assert status_of(letter) == "pending"


def test_discarding_a_dead_letter_marks_it_discarded_and_only_once(staff_browser):
    letter = dead_lettered(delivery(b"not json"))
    url = reverse("consumers:dead_letter_discard", args=["shipping", letter.pk])

    first = staff_browser.post(url, follow=True).content.decode()
    again = staff_browser.post(url, follow=True).content.decode()

    assert status_of(letter) == "discarded"
    assert f"Discarded dead letter {letter.pk}." in first
    assert f"Dead letter {letter.pk} is already discarded" in again


def test_replay_all_and_discard_all_take_every_pending_dead_letter_of_that_consumer_only(staff_browser, broker):
    shipping_letters = [dead_lettered(purchase_delivery(order_id=order_id), handler_bug=True) for order_id in (70, 71)]
    loyalty_letter = DeadLetter.objects.using("loyalty").create(consumer="loyalty", reason="not_json", body=b"x")

    staff_browser.post(reverse("consumers:dead_letters_replay_all", args=["shipping"]))

    assert sorted(json.loads(message.body)["subject"] for message in messages_on_queue(broker)) == ["70", "71"]
    assert [status_of(letter) for letter in shipping_letters] == ["replayed", "replayed"]
    assert status_of(loyalty_letter) == "pending"

    staff_browser.post(reverse("consumers:dead_letters_discard_all", args=["loyalty"]))

    assert status_of(loyalty_letter) == "discarded"
    assert [status_of(letter) for letter in shipping_letters] == ["replayed", "replayed"]
