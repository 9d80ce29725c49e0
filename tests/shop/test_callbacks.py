"""Order callbacks: which URLs the shop will call, how it signs what it sends, and how the task
delivers it to a real HTTP receiver, retrying until it answers 2xx and never twice once it did."""
import json
import socket
import threading
import time
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection, transaction

from messaging.events import Envelope, PointsAwarded, ShipmentCreated, ShippingLabelRendered
from shop.callbacks import (
    CallbackFailed,
    CallbackUrlRefused,
    OrderNotFulfilledYet,
    callback_signature,
    callback_signature_verify,
    callback_url_validate,
)
from shop.models import CallbackDelivery, Order
from shop.services import OrderItem, ShippingAddress, order_cancel, order_journey_record, order_place
from shop.tasks import notify_order_fulfilled

SECRET = "test-secret"
PUBLIC_ADDRESS = "93.184.215.14"


# --- a receiver: a real HTTP server in this process -----------------------------------------------


class Receiver:
    """Records every POST it gets and answers with the next status in `statuses` (then 200)."""

    def __init__(self):
        self.requests: list[dict] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append({"path": self.path, "body": body,
                                          "headers": {key.lower(): value for key, value in self.headers.items()}})
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/eventshop"


@pytest.fixture
def receiver():
    receiver = Receiver()
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture
def private_urls_allowed(settings):
    settings.CALLBACK_ALLOW_PRIVATE_URLS = True
    settings.CALLBACK_SIGNING_SECRET = SECRET
    return settings


@pytest.fixture
def sent_jobs(monkeypatch):
    """The notification jobs order_journey_record sends, and whether each was sent inside a transaction."""
    jobs = []
    monkeypatch.setattr(notify_order_fulfilled, "delay",
                        lambda order_id: jobs.append((order_id, connection.in_atomic_block)))
    return jobs


def envelope_for(event) -> Envelope:
    return Envelope(event=event, sequence=1, id=uuid.uuid4(), time=datetime.now(timezone.utc))


def hear(event) -> Order:
    with transaction.atomic():  # as the shop's consumer calls it
        return order_journey_record(envelope=envelope_for(event), summary="heard")


def placed_order(customer, product, address, callback_url="") -> Order:
    return order_place(customer=customer, items=[OrderItem(product.sku, 1)],
                       shipping_address=ShippingAddress(**address), callback_url=callback_url).order


def fulfil(order: Order) -> Order:
    hear(ShipmentCreated(shipment_id=1, order_id=order.pk, tracking_number="TRK123", country="GB"))
    return hear(PointsAwarded(order_id=order.pk, customer_id=order.customer_id, points=12, balance=12))


def deliveries(order: Order) -> list[tuple]:
    return list(CallbackDelivery.objects.filter(order=order).order_by("attempt")
                .values_list("attempt", "status_code", "delivered"))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- which URLs the shop will call ----------------------------------------------------------------


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/hook",
    "http://10.1.2.3/hook",
    "http://192.168.0.10:8080/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://0.0.0.0/hook",
    "http://224.0.0.1/hook",
    "http://100.64.0.1/hook",
    "http://localhost:8000/hook",
])
def test_urls_that_reach_private_loopback_or_link_local_addresses_are_refused(url):
    with pytest.raises(CallbackUrlRefused, match="public addresses only"):
        callback_url_validate(url)


@pytest.mark.parametrize("url, reason", [
    ("ftp://example.com/hook", "http or https"),
    ("file:///etc/passwd", "http or https"),
    ("http://user:secret@example.com/hook", "credentials"),
    ("http://user@example.com/hook", "credentials"),
    ("http://example.com:99999/hook", "port"),
    ("https://example.com/" + "a" * 500, "at most 500"),
])
def test_other_schemes_credentials_bad_ports_and_long_urls_are_refused(url, reason):
    with pytest.raises(CallbackUrlRefused, match=reason):
        callback_url_validate(url)


def test_a_public_address_is_accepted():
    assert callback_url_validate(f"https://{PUBLIC_ADDRESS}/hook") == f"https://{PUBLIC_ADDRESS}/hook"


def test_a_host_is_refused_if_any_of_its_addresses_is_private(monkeypatch):
    answers = {"hooks.example.com": [PUBLIC_ADDRESS], "mixed.example.com": [PUBLIC_ADDRESS, "10.0.0.7"]}
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, port, **kwargs: [
        (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port)) for address in answers[host]])

    assert callback_url_validate("https://hooks.example.com/orders") == "https://hooks.example.com/orders"
    with pytest.raises(CallbackUrlRefused, match="10.0.0.7"):
        callback_url_validate("https://mixed.example.com/orders")


def test_a_host_that_does_not_resolve_is_refused(monkeypatch):
    def no_such_host(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)

    with pytest.raises(CallbackUrlRefused, match="does not resolve"):
        callback_url_validate("https://no-such-host.example/hook")


def test_with_private_urls_allowed_localhost_is_accepted_but_other_schemes_and_credentials_are_not(settings):
    settings.CALLBACK_ALLOW_PRIVATE_URLS = True

    assert callback_url_validate("http://localhost:8000/hook") == "http://localhost:8000/hook"
    assert callback_url_validate("http://10.1.2.3/hook") == "http://10.1.2.3/hook"
    with pytest.raises(CallbackUrlRefused):
        callback_url_validate("ftp://localhost/hook")
    with pytest.raises(CallbackUrlRefused):
        callback_url_validate("http://user:secret@localhost/hook")


# --- the signature ----------------------------------------------------------------------------------


def test_a_signature_verifies_with_the_secret_and_fails_for_a_tampered_body_an_old_timestamp_or_another_secret():
    body = b'{"order_id":1,"status":"fulfilled"}'
    now = int(time.time())
    header = f"t={now},v1={callback_signature(body, SECRET, now)}"

    assert callback_signature_verify(body, header, SECRET)
    assert not callback_signature_verify(body.replace(b"1", b"2"), header, SECRET)
    assert not callback_signature_verify(body, header, "another-secret")
    old = now - 301
    assert not callback_signature_verify(body, f"t={old},v1={callback_signature(body, SECRET, old)}", SECRET)
    # The timestamp is signed: moving it forward breaks the signature.
    assert not callback_signature_verify(body, header.replace(f"t={now}", f"t={now + 1}"), SECRET)


@pytest.mark.parametrize("header", ["", "v1=abc", "t=soon,v1=abc", "t=1700000000", "garbage"])
def test_a_malformed_signature_header_does_not_verify(header):
    assert not callback_signature_verify(b"{}", header, SECRET)


def test_a_signature_header_with_several_v1_values_verifies_if_one_matches_for_secret_rotation():
    now = int(time.time())
    header = f"t={now},v1={callback_signature(b'{}', 'old-secret', now)},v1={callback_signature(b'{}', SECRET, now)}"
    assert callback_signature_verify(b"{}", header, SECRET)


# --- when the notification is sent --------------------------------------------------------------------


def test_the_order_turning_fulfilled_sends_one_notification_job_inside_the_transaction(customer, product, address,
                                                                                        sent_jobs):
    order = placed_order(customer, product, address, callback_url=f"https://{PUBLIC_ADDRESS}/hook")

    hear(ShipmentCreated(shipment_id=1, order_id=order.pk, tracking_number="TRK123", country="GB"))
    assert sent_jobs == []
    hear(PointsAwarded(order_id=order.pk, customer_id=customer.pk, points=12, balance=12))
    assert sent_jobs == [(order.pk, True)]
    hear(ShippingLabelRendered(shipment_id=1, order_id=order.pk, label_url="/media/TRK123.png"))

    assert Order.objects.get(pk=order.pk).status == Order.Status.FULFILLED
    assert sent_jobs == [(order.pk, True)], "a later event on a fulfilled order sent another job"


def test_an_order_without_a_callback_url_sends_no_notification_job(customer, product, address, sent_jobs):
    order = fulfil(placed_order(customer, product, address))

    assert order.status == Order.Status.FULFILLED
    assert sent_jobs == []


# --- the delivery -----------------------------------------------------------------------------------


def test_a_failed_delivery_is_retried_with_the_same_idempotency_key_and_a_signed_body(
        customer, product, address, receiver, private_urls_allowed, sent_jobs):
    order = fulfil(placed_order(customer, product, address, callback_url=receiver.url))
    receiver.statuses = [500, 200]

    result = notify_order_fulfilled.apply(args=[order.pk])

    assert result.successful(), result.traceback
    assert deliveries(order) == [(1, 500, False), (2, 200, True)]
    assert len(receiver.requests) == 2
    keys = {request["headers"]["idempotency-key"] for request in receiver.requests}
    assert keys == {f"order-{order.pk}-fulfilled"}
    for request in receiver.requests:
        assert request["path"] == "/hooks/eventshop"
        assert request["headers"]["content-type"] == "application/json"
        assert request["headers"]["x-eventshop-event"] == "order.fulfilled"
        assert callback_signature_verify(request["body"], request["headers"]["x-eventshop-signature"], SECRET)
        assert not callback_signature_verify(request["body"], request["headers"]["x-eventshop-signature"], "other")
    assert receiver.requests[0]["body"] == receiver.requests[1]["body"], "a retry must send the same notification"
    payload = json.loads(receiver.requests[1]["body"])
    assert payload == {
        "event": "order.fulfilled", "order_id": order.pk, "order_number": order.number, "status": "fulfilled",
        "total": "12.50", "currency": "EUR", "tracking_number": "TRK123", "points_awarded": 12,
        "fulfilled_at": payload["fulfilled_at"],
    }
    assert payload["fulfilled_at"] and payload["fulfilled_at"].endswith("Z")


def test_an_order_already_delivered_is_not_notified_again(customer, product, address, receiver, private_urls_allowed,
                                                          sent_jobs):
    order = fulfil(placed_order(customer, product, address, callback_url=receiver.url))
    notify_order_fulfilled.apply(args=[order.pk])
    assert len(receiver.requests) == 1

    result = notify_order_fulfilled.apply(args=[order.pk])

    assert result.successful()
    assert len(receiver.requests) == 1
    assert deliveries(order) == [(1, 200, True)]


def test_a_receiver_that_keeps_failing_gets_every_retry_and_then_the_task_gives_up(
        customer, product, address, receiver, private_urls_allowed, sent_jobs):
    order = fulfil(placed_order(customer, product, address, callback_url=receiver.url))
    receiver.statuses = [503] * 20

    result = notify_order_fulfilled.apply(args=[order.pk])

    assert result.failed() and isinstance(result.result, CallbackFailed)
    attempts = notify_order_fulfilled.max_retries + 1
    assert deliveries(order) == [(n, 503, False) for n in range(1, attempts + 1)]
    assert len(receiver.requests) == attempts


def test_a_receiver_that_is_down_is_recorded_as_an_error_and_retried(customer, product, address, private_urls_allowed,
                                                                     sent_jobs):
    order = fulfil(placed_order(customer, product, address, callback_url=f"http://127.0.0.1:{closed_port()}/hook"))

    result = notify_order_fulfilled.apply(args=[order.pk])

    assert result.failed()
    rows = list(CallbackDelivery.objects.filter(order=order))
    assert len(rows) == notify_order_fulfilled.max_retries + 1
    assert all(row.status_code is None and "ConnectionError" in row.error and not row.delivered for row in rows)


def test_a_url_that_became_private_is_refused_at_send_time_without_posting_or_retrying(
        customer, product, address, receiver, settings, sent_jobs):
    settings.CALLBACK_ALLOW_PRIVATE_URLS = True
    order = fulfil(placed_order(customer, product, address, callback_url=receiver.url))
    settings.CALLBACK_ALLOW_PRIVATE_URLS = False

    result = notify_order_fulfilled.apply(args=[order.pk])

    assert result.successful()
    assert receiver.requests == []
    [row] = CallbackDelivery.objects.filter(order=order)
    assert not row.delivered and row.error.startswith("refused: must resolve to public addresses only")


def test_a_job_that_runs_before_the_order_is_fulfilled_retries_and_posts_nothing(
        customer, product, address, receiver, private_urls_allowed):
    order = placed_order(customer, product, address, callback_url=receiver.url)

    result = notify_order_fulfilled.apply(args=[order.pk])

    assert result.failed() and isinstance(result.result, OrderNotFulfilledYet)
    assert receiver.requests == [] and deliveries(order) == []


def test_a_cancelled_order_is_not_notified(customer, product, address, receiver, private_urls_allowed, sent_jobs):
    order = order_cancel(order=fulfil(placed_order(customer, product, address, callback_url=receiver.url)))

    result = notify_order_fulfilled.apply(args=[order.pk])

    assert result.successful()
    assert receiver.requests == [] and deliveries(order) == []


# --- the API ------------------------------------------------------------------------------------------


def place_with_callback(client, address, callback_url):
    return client.post("/api/orders/", {"items": [{"sku": "MUG-01", "quantity": 1}], "shipping_address": address,
                                        "callback_url": callback_url}, format="json")


@pytest.mark.parametrize("callback_url", ["http://127.0.0.1:9000/hook", "http://localhost/hook", "ftp://example.com/x",
                                          "http://user:pw@example.com/hook"])
def test_the_api_refuses_a_callback_url_it_must_not_call_with_400(customer_client, product, address, callback_url):
    response = place_with_callback(customer_client, address, callback_url)

    assert response.status_code == 400, response.content
    assert list(response.json()["errors"]) == ["callback_url"]
    assert not Order.objects.exists()


def test_the_api_accepts_a_loopback_callback_url_when_private_urls_are_allowed_and_shows_it(
        customer_client, product, address, settings):
    settings.CALLBACK_ALLOW_PRIVATE_URLS = True

    response = place_with_callback(customer_client, address, "http://127.0.0.1:9000/hook")

    assert response.status_code == 201, response.content
    assert response.json()["callback_url"] == "http://127.0.0.1:9000/hook"
    assert Order.objects.get().callback_url == "http://127.0.0.1:9000/hook"
    shown = customer_client.get(f"/api/orders/{response.json()['id']}/").json()
    assert shown["callback_url"] == "http://127.0.0.1:9000/hook"


def test_an_order_placed_without_a_callback_url_shows_an_empty_one(customer_client, product, address):
    response = customer_client.post("/api/orders/", {"items": [{"sku": "MUG-01", "quantity": 1}],
                                                     "shipping_address": address}, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["callback_url"] == ""


def test_the_schema_documents_the_callback_url_in_the_request_and_the_order(db, api_client):
    schema = api_client.get("/api/schema/", {"format": "json"}).json()

    request_field = schema["components"]["schemas"]["OrderPlaceRequest"]["properties"]["callback_url"]
    assert request_field["format"] == "uri" and request_field["maxLength"] == 500
    assert "X-Eventshop-Signature" in request_field["description"]
    assert "callback_url" in schema["components"]["schemas"]["Order"]["properties"]
    assert "callback_url" not in schema["components"]["schemas"]["OrderPlaceRequest"].get("required", [])
