"""The operations view: staff only, the live numbers, the controls, and one order's journey."""
import json
import re
from datetime import timedelta

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from messaging.consumer import EventConsumer
from messaging.faults import FaultPlan
from messaging.metrics import metrics_sample
from messaging.models import ConsumerState, DeadLetter, OutboxMessage
from messaging.operations import consumer_outage_start
from messaging.correlation import current_correlation_id
from messaging.outbox import outbox_event_record, outbox_publish
from messaging.topology import SUBSCRIPTIONS, event_bus_connect
from shop import scenarios
from shop.models import Order
from shop.services import OrderItem, ShippingAddress, order_place
from tests.conftest import ADDRESS
from tests.factories import ProductFactory, UserFactory
from tests.messaging.builders import RecordingRetryScheduler, delivery, envelope, messages_on_queue, purchase

pytestmark = pytest.mark.django_db(databases=["default", "shipping", "loyalty"])


@pytest.fixture
def broker(settings, tmp_path):
    """A real embedded broker, with every queue declared."""
    settings.BROKER_URL = f"eventshop-sqlite:///{tmp_path / 'b.sqlite3'}"
    event_bus_connect().close()
    return settings.BROKER_URL


@pytest.fixture
def staff_browser(client, staff):
    client.force_login(staff)
    return client


def consumer_state(consumer: str) -> ConsumerState:
    return ConsumerState.objects.using(SUBSCRIPTIONS[consumer].database).get(consumer=consumer)


def messages_on(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def take_messages(broker_url: str, queue_name: str) -> list:
    """Consume (and ack) everything waiting in one subscriber's queue of the broker."""
    consumer = next(name for name, subscription in SUBSCRIPTIONS.items() if subscription.queue_name == queue_name)
    return messages_on_queue(broker_url, consumer)


# --- who may see it ------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get(reverse("ops:overview"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("shop:login")) and "next=/ops/" in response["Location"]


def test_customers_get_403_from_every_page_and_control(client, customer):
    client.force_login(customer)

    assert client.get(reverse("ops:overview")).status_code == 403
    assert client.get(reverse("ops:state")).status_code == 403
    assert client.get(reverse("ops:order_journey", args=[1])).status_code == 403
    assert client.post(reverse("ops:consumer_pause", args=["shipping"])).status_code == 403
    assert not ConsumerState.objects.using("shipping").filter(consumer="shipping", paused=True).exists()


# --- the overview and its numbers ----------------------------------------------------------------


def test_the_overview_draws_every_queue_and_consumer_with_the_broker_counts(staff_browser, broker):
    with event_bus_connect() as bus, transaction.atomic():
        messages = [outbox_event_record(purchase(order_id=order_id), using="default") for order_id in (1, 2)]
        outbox_publish(using="default", messages=messages, bus=bus)

    response = staff_browser.get(reverse("ops:overview"))

    html = response.content.decode()
    assert response.status_code == 200
    for queue in ("shipping.events", "loyalty.events", "loyalty.large-orders", "shop.journey",
                  "work.shipping-labels", "shop.events.unrouted"):
        assert f'data-queue="{queue}"' in html
    for consumer in ("shipping", "loyalty", "loyalty-bonus", "shop"):
        assert f'data-consumer="{consumer}"' in html
    shipping_queue = re.search(r'data-queue="shipping.events".*?data-field="ready">(\d+)<', html, re.S)
    assert shipping_queue.group(1) == "2"
    assert "never seen: not started?" in html  # no consumer has sent a heartbeat
    assert 'href="/dashboards/shipping/"' in html and 'href="/dashboards/loyalty/"' in html


def test_the_overview_loads_nothing_from_other_sites(staff_browser, broker):
    html = staff_browser.get(reverse("ops:overview")).content.decode()

    assert re.findall(r'(?:src|href|action)="(?:https?:)?//', html) == []
    assert "messaging/ops.js" in html and "messaging/charts.js" in html


def test_the_overview_says_checkout_latency_is_not_available_without_the_shops_panel(staff_browser, broker, monkeypatch):
    from django.template import TemplateDoesNotExist

    from messaging import ops_views

    def missing(name, *args, **kwargs):
        raise TemplateDoesNotExist(name)

    monkeypatch.setattr(ops_views.pages, "get_template", missing)

    html = staff_browser.get(reverse("ops:overview")).content.decode()

    assert "checkout latency: not available" in html


def test_state_json_has_the_backlog_depths_consumers_rates_and_series(staff_browser, broker):
    with event_bus_connect() as bus, transaction.atomic():
        messages = [outbox_event_record(purchase(order_id=order_id), using="default") for order_id in (1, 2, 3)]
        outbox_publish(using="default", messages=messages[:2], bus=bus)
    EventConsumer(SUBSCRIPTIONS["shipping"]).process(delivery(envelope(purchase(order_id=9))), RecordingRetryScheduler())
    ConsumerState.objects.using("shipping").update_or_create(consumer="shipping", defaults={"last_heartbeat_at": timezone.now()})
    now = timezone.now()
    metrics_sample(since=now - timedelta(seconds=2), now=now)

    state = staff_browser.get(reverse("ops:state")).json()

    assert {"generated_at", "broker", "shop", "outbox", "relay", "queues", "consumers", "charts", "scenario",
            "recent_orders", "checkout_latency_html"} <= set(state)
    assert state["broker"]["error"] == ""
    # One purchase left unpublished in the shop's outbox; the shipment shipping created waits in its own.
    assert {db["database"]: db["unpublished"] for db in state["outbox"]["databases"]} == {
        "default": 1, "shipping": 1, "loyalty": 0}
    assert state["outbox"]["unpublished"] == 2
    assert state["queues"]["shipping.events"]["ready"] == 2 and state["queues"]["loyalty.events"]["ready"] == 2
    assert state["queues"]["shop.journey"]["ready"] == 0
    assert state["queues"]["shipping.events"]["consumers"] is None  # the embedded broker cannot tell
    shipping = state["consumers"]["shipping"]
    assert (shipping["status"], shipping["alive"], shipping["handled_last_minute"]) == ("alive", True, 1)
    assert state["consumers"]["loyalty"]["status"] == "unknown"
    depth = {series["key"]: series["points"] for series in state["charts"]["depth"]}
    [(sampled_at_ms, ready)] = depth["queue.shipping.events.ready"]
    assert ready == 2 and abs(sampled_at_ms - now.timestamp() * 1000) < 1000
    assert {series["key"] for series in state["charts"]["rates"]} >= {"rate.published", "rate.consumed.loyalty"}
    assert state["relay"]["sampling"] is True


def test_state_json_reports_the_traffic_spike_progress(staff_browser, broker):
    scenarios._progress_save(scenarios.ScenarioProgress(name="traffic_spike", orders=300, placed=120, skipped=2,
                                                        started_at=timezone.now().isoformat()))

    scenario = staff_browser.get(reverse("ops:state")).json()["scenario"]

    assert (scenario["placed"], scenario["orders"], scenario["running"]) == (120, 300, True)
    assert scenario["text"] == "traffic spike: 120 of 300 orders placed, 2 skipped (out of stock)"


def test_the_overview_still_renders_when_the_broker_is_down(staff_browser, settings):
    settings.BROKER_URL = "amqp://guest:guest@127.0.0.1:1//"

    state = staff_browser.get(reverse("ops:state")).json()

    assert state["broker"]["error"] and state["queues"]["shipping.events"]["ready"] is None
    assert staff_browser.get(reverse("ops:overview")).status_code == 200


# --- the controls --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault, value, expected",
    [
        ("fail_share", "0.3", {"fail_share": 0.3}),
        ("slow_ms", "250", {"slow_ms": 250}),
        ("duplicate_share", "0.5", {"duplicate_share": 0.5}),
        ("reorder_window", "5", {"reorder_window": 5}),
        ("crash_after_commit", "", {"crash_after_commit": True}),
    ],
)
def test_each_fault_form_sets_its_fault_and_keeps_the_others(staff_browser, fault, value, expected):
    ConsumerState.objects.using("loyalty").create(consumer="loyalty", faults={"fail_first_attempts": 2})

    response = staff_browser.post(reverse("ops:consumer_faults", args=["loyalty"]), {"fault": fault, "value": value},
                                  follow=True)

    assert response.redirect_chain == [(reverse("ops:overview"), 302)]
    assert consumer_state("loyalty").faults == {**FaultPlan().to_dict(), "fail_first_attempts": 2, **expected}
    assert any(message.startswith("loyalty") for message in messages_on(response))


def test_clearing_faults_removes_every_fault(staff_browser):
    ConsumerState.objects.using("shipping").create(consumer="shipping", faults={"fail_share": 0.5, "slow_ms": 100})

    staff_browser.post(reverse("ops:consumer_faults", args=["shipping"]), {"fault": "clear"})

    assert consumer_state("shipping").faults == FaultPlan().to_dict()


@pytest.mark.parametrize("fault, value", [("fail_share", "1.5"), ("slow_ms", "-1"), ("reorder_window", ""),
                                          ("no_such_fault", "1")])
def test_a_fault_out_of_range_is_refused_and_changes_nothing(staff_browser, fault, value):
    response = staff_browser.post(reverse("ops:consumer_faults", args=["shop"]), {"fault": fault, "value": value},
                                  follow=True)

    assert not ConsumerState.objects.using("default").filter(consumer="shop").exclude(faults={}).exists()
    assert [message.tags for message in response.context["messages"]] == ["error"]


def test_faults_for_an_unknown_consumer_are_404(staff_browser):
    response = staff_browser.post(reverse("ops:consumer_faults", args=["billing"]), {"fault": "clear"})

    assert response.status_code == 404


def test_stop_pauses_a_consumer_and_start_resumes_it(staff_browser):
    response = staff_browser.post(reverse("ops:consumer_pause", args=["shipping"]), follow=True)

    assert consumer_state("shipping").paused is True
    assert "shipping stops within a heartbeat" in messages_on(response)[0]
    assert staff_browser.get(reverse("ops:state")).json()["consumers"]["shipping"]["status"] == "paused"

    staff_browser.post(reverse("ops:consumer_resume", args=["shipping"]))

    state = consumer_state("shipping")
    assert (state.paused, state.paused_until) == (False, None)


def test_start_also_ends_a_timed_outage(staff_browser):
    consumer_outage_start(consumer="loyalty", seconds=30)

    staff_browser.post(reverse("ops:consumer_resume", args=["loyalty"]))

    assert consumer_state("loyalty").paused_until is None


def test_the_loyalty_outage_pauses_loyalty_alone_for_thirty_seconds_and_places_orders_meanwhile(staff_browser,
                                                                                                  monkeypatch):
    started = []
    monkeypatch.setattr(scenarios, "traffic_spike_start", lambda **kwargs: started.append(kwargs))
    before = timezone.now()

    response = staff_browser.post(reverse("ops:scenario_loyalty_outage"), follow=True)

    loyalty = consumer_state("loyalty")
    assert loyalty.paused is False  # it resumes by itself
    assert before + timedelta(seconds=29) < loyalty.paused_until < timezone.now() + timedelta(seconds=31)
    assert not ConsumerState.objects.using("shipping").filter(consumer="shipping").exclude(paused_until=None).exists()
    assert "Loyalty is down for 30 s" in messages_on(response)[0] and "60 orders arrive over 20 s" in messages_on(response)[0]
    assert started == [{"orders": 60, "seconds": 20, "name": "loyalty_outage"}]
    assert staff_browser.get(reverse("ops:state")).json()["consumers"]["loyalty"]["status_text"].startswith(
        "paused, resumes in")


def test_a_finished_outage_no_longer_shows_as_paused(staff_browser):
    ConsumerState.objects.using("loyalty").create(consumer="loyalty", paused_until=timezone.now() - timedelta(seconds=1))

    consumer = staff_browser.get(reverse("ops:state")).json()["consumers"]["loyalty"]

    assert consumer["paused"] is False and consumer["status"] != "paused"


def test_injected_poison_that_is_not_json_really_reaches_the_queues_and_is_dead_lettered(staff_browser, broker):
    response = staff_browser.post(reverse("ops:poison_inject"), {"kind": "not_json"}, follow=True)

    assert "Published a body that is not JSON" in messages_on(response)[0]
    [message] = take_messages(broker, "shipping.events")
    with pytest.raises(ValueError):
        json.loads(message.body)
    assert message.routing_key == "shop.purchase.confirmed.ZZ.standard"
    assert len(take_messages(broker, "loyalty.events")) == 1
    assert take_messages(broker, "loyalty.large-orders") == []

    outcome = EventConsumer(SUBSCRIPTIONS["shipping"]).process(message, RecordingRetryScheduler())

    assert outcome == "dead_lettered"
    assert DeadLetter.objects.using("shipping").get().reason == "not_json"


def test_injected_poison_of_an_unknown_type_is_a_cloudevent_nobody_handles(staff_browser, broker):
    staff_browser.post(reverse("ops:poison_inject"), {"kind": "unknown_type"})

    [message] = take_messages(broker, "shipping.events")
    document = json.loads(message.body)
    assert document["specversion"] == "1.0" and document["type"] == "shop.purchase.teleported"
    EventConsumer(SUBSCRIPTIONS["shipping"]).process(message, RecordingRetryScheduler())
    assert DeadLetter.objects.using("shipping").get().reason == "unknown_type"


def test_poison_injection_says_so_when_the_broker_is_down(staff_browser, settings):
    settings.BROKER_URL = "amqp://guest:guest@127.0.0.1:1//"

    response = staff_browser.post(reverse("ops:poison_inject"), {"kind": "not_json"}, follow=True)

    assert [message.tags for message in response.context["messages"]] == ["error"]
    assert "cannot publish to the broker" in messages_on(response)[0]


def test_the_poison_scenario_publishes_one_poison_message_and_places_three_orders(staff_browser, broker):
    ProductFactory(stock=5)

    response = staff_browser.post(reverse("ops:scenario_poison_message"), follow=True)

    assert Order.objects.filter(customer__username="demo").count() == 3
    assert OutboxMessage.objects.filter(event_type="shop.purchase.confirmed").count() == 3
    [poison] = take_messages(broker, "shipping.events")  # the orders' events wait in the outbox (no publish in tests)
    with pytest.raises(ValueError):
        json.loads(poison.body)
    assert "placed 3 orders" in messages_on(response)[0]


def test_the_traffic_spike_button_starts_300_orders_over_10_seconds(staff_browser, monkeypatch):
    started = []
    monkeypatch.setattr(scenarios, "traffic_spike_start", lambda **kwargs: started.append(kwargs))

    response = staff_browser.post(reverse("ops:scenario_traffic_spike"), follow=True)

    assert started == [{"orders": 300, "seconds": 10}]
    assert "Traffic spike: 300 orders over 10 s" in messages_on(response)[0]


def test_a_second_traffic_spike_while_one_runs_is_refused_with_a_message(staff_browser, monkeypatch):
    def already_running(**kwargs):
        raise scenarios.ScenarioAlreadyRunning("a traffic spike is already running")

    monkeypatch.setattr(scenarios, "traffic_spike_start", already_running)

    response = staff_browser.post(reverse("ops:scenario_traffic_spike"), follow=True)

    assert messages_on(response) == ["Traffic spike not started: a traffic spike is already running."]


def test_controls_only_accept_post(staff_browser):
    assert staff_browser.get(reverse("ops:consumer_pause", args=["shipping"])).status_code == 405
    assert staff_browser.get(reverse("ops:poison_inject")).status_code == 405


# --- one order's journey -------------------------------------------------------------------------


def placed_order(correlation_id: str) -> Order:
    product = ProductFactory(stock=10)
    token = current_correlation_id.set(correlation_id)
    try:
        return order_place(customer=UserFactory(), items=[OrderItem(product.sku, 1)],
                           shipping_address=ShippingAddress(**ADDRESS)).order
    finally:
        current_correlation_id.reset(token)


def test_the_journey_lists_the_orders_events_and_every_delivery_in_time_order(staff_browser):
    order = placed_order("abc-123")
    other = placed_order("other-999")
    message = OutboxMessage.objects.get(subject=str(order.pk))
    shipping = EventConsumer(SUBSCRIPTIONS["shipping"])
    retries = RecordingRetryScheduler()
    shipping.process(delivery(message.body, routing_key=message.routing_key), retries)
    shipping.process(delivery(message.body, routing_key=message.routing_key), retries)  # a redelivery

    response = staff_browser.get(reverse("ops:order_journey", args=[order.pk]))

    html = response.content.decode()
    rows = response.context["rows"]
    assert [(row["where"], row["event_type"], row["outcome"]) for row in rows] == [
        ("shop outbox", "shop.purchase.confirmed", "unpublished"),
        ("shipping outbox", "shipping.shipment.created", "unpublished"),
        ("shipping", "shop.purchase.confirmed", "applied"),
        ("shipping", "shop.purchase.confirmed", "duplicate"),
    ]
    assert {row["correlation_id"] for row in rows} == {"abc-123"}  # carried into shipping's own event
    assert rows[2]["worker"] == shipping.worker and rows[2]["duration_ms"] > 0
    assert order.number in html and "abc-123" in html and "other-999" not in html
    assert str(other.pk) not in [row["event_id"] for row in rows]


def test_the_journey_shows_the_orders_own_correlation_id(staff_browser):
    order = placed_order("abc-123")
    Order.objects.filter(pk=order.pk).update(correlation_id="req-7")

    html = staff_browser.get(reverse("ops:order_journey", args=[order.pk])).content.decode()

    assert re.search(r"Correlation id of the order</dt><dd><code>req-7</code>", html)


def test_the_journey_of_an_order_that_never_existed_is_404(staff_browser):
    assert staff_browser.get(reverse("ops:order_journey", args=[999])).status_code == 404


def test_the_search_form_opens_an_orders_journey_by_id_or_number(staff_browser):
    order = placed_order("abc-123")
    journey = reverse("ops:order_journey", args=[order.pk])

    assert staff_browser.get(reverse("ops:journey_search"), {"order": str(order.pk)})["Location"] == journey
    assert staff_browser.get(reverse("ops:journey_search"), {"order": order.number.lower()})["Location"] == journey
    response = staff_browser.get(reverse("ops:journey_search"), {"order": "ES-NOPE"}, follow=True)
    assert messages_on(response)[0].startswith("No order 'ES-NOPE'")
