"""Checkout, synchronous or asynchronous: what each mode costs the customer's request.

The sync tests make real HTTP calls: the services' internal endpoint is served by pytest-django's
live server, on the same test databases.
"""
import threading
from datetime import timedelta

import pytest
import requests
from django.core.signals import request_finished
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from loyalty.models import PointsTransaction
from messaging.consumer import Delivery, EventConsumer, TransientError
from messaging.events import CONTENT_TYPE, PurchaseConfirmed
from messaging.operations import consumer_faults_update
from messaging.models import ConsumerState, DeliveryAttempt, InboxMessage, OutboxMessage
from messaging.topology import SUBSCRIPTIONS
from shipping import handlers as shipping_handlers
from shipping.models import Shipment
from shop.checkout import DownstreamUnavailable, checkout_mode_get, checkout_mode_set, checkout_place_order
from shop.models import CheckoutTiming, Order
from shop.selectors import checkout_latency_context, checkout_latency_summary
from shop.services import OrderItem, ShippingAddress
from tests.messaging.builders import RecordingRetryScheduler

ALL_DATABASES = ["default", "shipping", "loyalty"]
LIVE = pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
TOKEN = "test-internal-token"


@pytest.fixture(autouse=True)
def internal_token(settings):
    settings.INTERNAL_API_TOKEN = TOKEN


@pytest.fixture
def sync_checkout(settings, live_server):
    """Sync mode, with the shop calling the services on the live server."""
    settings.SERVICE_BASE_URL = live_server.url
    checkout_mode_set(mode="sync")


def place(customer, product, address, **kwargs):
    return checkout_place_order(customer=customer, items=[OrderItem(product.sku, 1)],
                                shipping_address=ShippingAddress(**address), **kwargs)


def purchase_message(order: Order) -> OutboxMessage:
    return OutboxMessage.objects.using("default").get(subject=str(order.pk), event_type=PurchaseConfirmed.type)


def pause(consumer: str, **fields) -> None:
    ConsumerState.objects.using(SUBSCRIPTIONS[consumer].database).update_or_create(
        consumer=consumer, defaults=fields or {"paused": True})


def post_event(client, consumer: str, body: str | bytes, *, token: str | None = TOKEN):
    headers = {"X-Internal-Token": token} if token is not None else {}
    return client.post(f"/internal/events/{consumer}/", data=body, content_type=CONTENT_TYPE, headers=headers)


# --- the mode ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_checkout_is_async_until_switched_and_refuses_an_unknown_mode():
    assert checkout_mode_get() == "async"

    checkout_mode_set(mode="sync")

    assert checkout_mode_get() == "sync"
    with pytest.raises(ValueError):
        checkout_mode_set(mode="eventually")
    assert checkout_mode_get() == "sync"


# --- async --------------------------------------------------------------------------------------


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_an_async_checkout_records_its_timing_and_calls_no_service(customer, product, address, monkeypatch):
    calls = []
    monkeypatch.setattr(requests, "post", lambda *args, **kwargs: calls.append(args))

    placed = place(customer, product, address)

    assert placed.created and calls == []
    [timing] = CheckoutTiming.objects.all()
    assert (timing.mode, timing.succeeded, timing.detail) == ("async", True, "")
    assert timing.duration_ms > 0
    assert purchase_message(placed.order).published_at is None  # the event waits in the outbox for the broker
    assert not Shipment.objects.exists() and not PointsTransaction.objects.exists()


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_a_rejected_checkout_records_a_failed_timing_too(customer, product, address):
    product.stock = 0
    product.save()

    with pytest.raises(Exception, match="not enough stock"):
        place(customer, product, address)

    [timing] = CheckoutTiming.objects.all()
    assert (timing.mode, timing.succeeded) == ("async", False)
    assert timing.detail.startswith("OutOfStock")


# --- sync ---------------------------------------------------------------------------------------


@LIVE
def test_a_sync_checkout_returns_only_once_shipping_and_loyalty_have_applied_the_event(sync_checkout, customer, product, address):
    placed = place(customer, product, address)

    order = placed.order
    assert Shipment.objects.filter(order_id=order.pk).count() == 1
    assert list(PointsTransaction.objects.filter(order_id=order.pk).values_list("kind", "points")) == [("award", 12)]
    event_id = purchase_message(order).event_id
    for consumer, database in (("shipping", "shipping"), ("loyalty", "loyalty")):
        assert InboxMessage.objects.using(database).filter(consumer=consumer, event_id=event_id).count() == 1
    [timing] = CheckoutTiming.objects.all()
    assert (timing.mode, timing.succeeded) == ("sync", True)


@LIVE
def test_the_brokers_later_copy_of_a_sync_delivered_event_is_a_duplicate(sync_checkout, customer, product, address):
    order = place(customer, product, address).order
    message = purchase_message(order)

    outcomes = [
        EventConsumer(SUBSCRIPTIONS[consumer]).process(
            Delivery(body=message.body.encode(), content_type=CONTENT_TYPE, routing_key=message.routing_key, headers={}),
            RecordingRetryScheduler(),
        )
        for consumer in ("shipping", "loyalty")
    ]

    assert outcomes == ["duplicate", "duplicate"]
    assert Shipment.objects.filter(order_id=order.pk).count() == 1
    assert PointsTransaction.objects.filter(order_id=order.pk).count() == 1


@LIVE
def test_a_paused_loyalty_fails_a_sync_checkout_with_202_naming_the_placed_order_and_the_failed_call(
        sync_checkout, customer_client, product, address):
    pause("loyalty")
    body = {"items": [{"sku": product.sku, "quantity": 1}], "shipping_address": address}

    response = customer_client.post("/api/orders/", body, format="json", headers={"Idempotency-Key": "k-1"})

    # Not a 5xx: the order is committed, and a client retrying a 5xx without a key would place it twice.
    assert response.status_code == 202, response.content
    accepted = response.json()
    assert response.headers["Location"].endswith(f"/api/orders/{accepted['id']}/")
    assert accepted["downstream_failure"]["service"] == "loyalty"
    assert accepted["downstream_failure"]["reason"].startswith("answered 503")
    assert "asynchronously" in accepted["downstream_failure"]["detail"]
    order = Order.objects.get()
    assert accepted["id"] == order.pk and accepted["number"] == order.number
    assert purchase_message(order).body  # the async path will complete it
    assert Shipment.objects.filter(order_id=order.pk).exists()  # shipping was called first
    assert not PointsTransaction.objects.exists()
    [timing] = CheckoutTiming.objects.all()
    assert (timing.mode, timing.succeeded) == ("sync", False)
    assert timing.detail.startswith("loyalty: answered 503")

    # Once loyalty is back, the client's retry with the same key completes it and places nothing new.
    pause("loyalty", paused=False)
    retry = customer_client.post("/api/orders/", body, format="json", headers={"Idempotency-Key": "k-1"})

    assert retry.status_code == 200 and retry.json()["id"] == order.pk
    assert Order.objects.count() == 1
    assert PointsTransaction.objects.filter(order_id=order.pk).count() == 1


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_a_paused_loyalty_goes_unnoticed_by_an_async_checkout(customer_client, product, address):
    pause("loyalty")

    response = customer_client.post("/api/orders/", {"items": [{"sku": product.sku, "quantity": 1}],
                                                     "shipping_address": address}, format="json")

    assert response.status_code == 201, response.content
    assert CheckoutTiming.objects.get().succeeded


@LIVE
def test_the_checkout_page_shows_the_placed_order_with_the_downstream_failure_and_empties_the_cart(
        sync_checkout, client, customer, product, address):
    pause("loyalty")
    client.force_login(customer)
    client.post(reverse("shop:cart_add", args=[product.sku]), {"quantity": 1})
    page = client.get(reverse("shop:checkout")).content.decode()
    token = page.split('name="idempotency_key" value="')[1].split('"')[0]

    response = client.post(reverse("shop:checkout"), {**address, "idempotency_key": token}, follow=True)

    order = Order.objects.get()
    assert response.redirect_chain == [(order.get_absolute_url(), 302)]
    html = response.content.decode()
    assert f"Order {order.number} is placed" in html and "loyalty is unavailable" in html
    assert client.get(reverse("shop:cart")).context["lines"] == []
    # The same form again leads to the same order, placing nothing new.
    assert client.post(reverse("shop:checkout"), {**address, "idempotency_key": token}).url == order.get_absolute_url()
    assert Order.objects.count() == 1


@LIVE
def test_a_slow_shipping_adds_its_delay_to_sync_checkouts_only(settings, live_server, customer, product, address):
    settings.SERVICE_BASE_URL = live_server.url
    consumer_faults_update(consumer="shipping", slow_ms=300)

    place(customer, product, address)
    checkout_mode_set(mode="sync")
    place(customer, product, address)

    durations = dict(CheckoutTiming.objects.values_list("mode", "duration_ms"))
    assert durations["sync"] >= 300
    assert durations["async"] < 300


@pytest.fixture
def abandoned_request_finished():
    """Set when the live server finishes a request; waited on so no request outlives its test."""
    finished = threading.Event()
    receiver = lambda **kwargs: finished.set()  # noqa: E731
    request_finished.connect(receiver, weak=False)
    yield finished
    request_finished.disconnect(receiver)


@LIVE
def test_a_service_that_does_not_answer_in_time_fails_the_sync_checkout(sync_checkout, settings, customer, product, address,
                                                                        abandoned_request_finished):
    settings.CHECKOUT_SYNC_TIMEOUT_SECONDS = 0.2
    consumer_faults_update(consumer="shipping", slow_ms=600)

    with pytest.raises(DownstreamUnavailable, match="shipping is unavailable .no answer within 0.2 s."):
        place(customer, product, address)

    assert CheckoutTiming.objects.get().detail == "shipping: no answer within 0.2 s"
    # A timeout says nothing of the outcome: shipping goes on and applies the event after the shop gave up.
    assert abandoned_request_finished.wait(timeout=5)
    assert Shipment.objects.count() == 1


# --- the internal endpoint ---------------------------------------------------------------------


@pytest.fixture
def purchase_body(db, customer, product, address):
    return purchase_message(place(customer, product, address).order).body


@pytest.mark.django_db(databases=ALL_DATABASES)
@pytest.mark.parametrize("token", [None, "", "wrong-token"])
def test_the_internal_endpoint_refuses_a_missing_or_wrong_token(client, purchase_body, token):
    response = post_event(client, "shipping", purchase_body, token=token)

    assert response.status_code == 403
    assert not Shipment.objects.exists()


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_the_internal_endpoint_applies_an_event_once_and_answers_duplicate_the_second_time(client, purchase_body):
    first = post_event(client, "shipping", purchase_body)
    second = post_event(client, "shipping", purchase_body)

    assert (first.status_code, first.json()) == (200, {"outcome": "applied"})
    assert (second.status_code, second.json()) == (200, {"outcome": "duplicate"})
    assert Shipment.objects.count() == 1
    assert DeliveryAttempt.objects.using("shipping").get(outcome="applied").worker.startswith("http ")


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_the_internal_endpoint_answers_503_while_the_consumer_is_paused_until_later(client, purchase_body):
    pause("shipping", paused_until=timezone.now() + timedelta(minutes=5))

    response = post_event(client, "shipping", purchase_body)

    assert response.status_code == 503
    assert not Shipment.objects.exists() and not InboxMessage.objects.using("shipping").exists()


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_the_internal_endpoint_answers_503_to_a_transient_failure_and_the_next_call_applies_it(
        client, purchase_body, monkeypatch):
    def carrier_timeout(envelope):
        raise TransientError("shipping's carrier API timed out")

    monkeypatch.setitem(shipping_handlers.HANDLERS, PurchaseConfirmed.type, carrier_timeout)
    failed = post_event(client, "shipping", purchase_body)
    monkeypatch.undo()
    retried = post_event(client, "shipping", purchase_body)

    assert failed.status_code == 503 and "carrier API timed out" in failed.json()["detail"]
    assert (retried.status_code, retried.json()) == (200, {"outcome": "applied"})
    assert Shipment.objects.count() == 1


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_the_internal_endpoint_dead_letters_an_event_that_can_never_be_handled_with_422(client):
    response = post_event(client, "loyalty", b'{"not": "a cloudevent"}')

    assert response.status_code == 422 and response.json()["outcome"] == "dead_lettered"


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_the_internal_endpoint_knows_only_the_subscribed_consumers_and_only_post(client, purchase_body):
    assert post_event(client, "billing", purchase_body).status_code == 404
    assert client.get("/internal/events/shipping/", headers={"X-Internal-Token": TOKEN}).status_code == 405


# --- what the operations view shows -------------------------------------------------------------


def timings(mode: str, durations, *, failed=0, minutes_ago=0):
    at = timezone.now() - timedelta(minutes=minutes_ago)
    CheckoutTiming.objects.bulk_create(
        CheckoutTiming(mode=mode, duration_ms=ms, succeeded=index >= failed, created_at=at,
                       detail="" if index >= failed else "loyalty: down")
        for index, ms in enumerate(durations)
    )


@pytest.mark.django_db
def test_the_latency_summary_gives_nearest_rank_percentiles_per_mode_over_recent_checkouts():
    timings("sync", [float(ms) for ms in range(100, 0, -1)], failed=3)
    timings("async", [float(ms) for ms in range(1, 11)])
    timings("async", [5000.0] * 50, minutes_ago=20)  # too old to count

    summary = checkout_latency_summary(minutes=15)

    assert summary["sync"] == {"p50": 50.0, "p95": 95.0, "p99": 99.0, "count": 100, "failures": 3}
    assert summary["async"] == {"p50": 5.0, "p95": 10.0, "p99": 10.0, "count": 10, "failures": 0}


@pytest.mark.django_db
def test_the_latency_summary_has_no_percentiles_without_checkouts():
    assert checkout_latency_summary()["sync"] == {"p50": None, "p95": None, "p99": None, "count": 0, "failures": 0}


@pytest.mark.django_db
def test_the_latency_partial_shows_the_mode_switch_the_table_and_the_latest_failures(staff):
    timings("sync", [120.0, 480.0], failed=1)
    request = RequestFactory().get("/ops/")
    request.user = staff

    html = render_to_string("shop/ops/_checkout_latency.html", checkout_latency_context(), request=request)
    bare = render_to_string("shop/ops/_checkout_latency.html", {}, request=request)

    assert f'action="{reverse("shop:checkout_mode")}"' in html and 'data-checkout-mode="async"' in html
    assert "<td class=\"num\">480</td>" in html and "loyalty: down" in html
    assert 'data-checkout-mode="async"' in bare and "None." in bare


@pytest.mark.django_db
def test_staff_switch_the_checkout_mode_and_customers_may_not(client, staff, customer):
    client.force_login(customer)
    assert client.post(reverse("shop:checkout_mode"), {"mode": "sync"}).status_code == 403
    assert checkout_mode_get() == "async"

    client.force_login(staff)
    response = client.post(reverse("shop:checkout_mode"), {"mode": "sync", "next": "/ops/#checkout-latency"})

    assert (response.status_code, response.url) == (302, "/ops/#checkout-latency")
    assert checkout_mode_get() == "sync"
    assert client.post(reverse("shop:checkout_mode"), {"mode": "eventually"}).status_code == 400
    assert client.post(reverse("shop:checkout_mode"), {"mode": "async", "next": "https://evil.example/"}).url == "/ops/"
