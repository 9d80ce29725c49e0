"""An API client that gives a callback URL hears, once and signed, that its order was fulfilled.

The order goes through the real processes: web, relay, shipping and loyalty, the shop's listener
(which sends the notification job when the order turns fulfilled) and a Celery worker (which POSTs).
"""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shop.callbacks import callback_signature_verify
from tests.integration.stack import wait_until

SECRET = "test-secret"
# After the first notification, how long a duplicate is given to show up before the test says there is none.
DUPLICATE_GRACE_SECONDS = 3


@pytest.fixture
def receiver():
    """An API client's endpoint: a real HTTP server on this machine that records each POST and answers 200."""
    requests_seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            requests_seen.append({"body": body, "headers": {key.lower(): value for key, value in self.headers.items()}})
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.url = f"http://127.0.0.1:{server.server_port}/hooks/eventshop"
    server.requests_seen = requests_seen
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_callback_url_gets_exactly_one_signed_post_when_the_order_is_fulfilled(any_broker_stack, receiver):
    stack = any_broker_stack  # on each of the four brokers
    stack.env["CALLBACK_ALLOW_PRIVATE_URLS"] = "true"  # the receiver is on 127.0.0.1
    stack.env["CALLBACK_SIGNING_SECRET"] = SECRET
    for name in ("web", "relay", "shipping", "loyalty", "shop", "worker#1"):
        stack.start(name)

    response = stack.api("POST", "/api/orders/", headers={"Idempotency-Key": "callback-it-1"}, json={
        "items": [{"sku": stack.some_sku(), "quantity": 1}],
        "shipping_address": {"name": "Grace Hopper", "line1": "1 Navy Way", "city": "Arlington",
                             "postal_code": "22201", "country": "US"},
        "callback_url": receiver.url,
    })
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["callback_url"] == receiver.url

    wait_until(lambda: receiver.requests_seen, timeout=60, what="the callback POST")
    delivered = "SELECT attempt, status_code, delivered FROM shop_callbackdelivery WHERE order_id = ?"
    rows = wait_until(lambda: stack.backend.sql("default", delivered, (order["id"],)), what="the delivery record")
    time.sleep(DUPLICATE_GRACE_SECONDS)

    assert len(receiver.requests_seen) == 1, f"the receiver heard {len(receiver.requests_seen)} times"
    [request] = receiver.requests_seen
    assert callback_signature_verify(request["body"], request["headers"]["x-eventshop-signature"], SECRET)
    assert request["headers"]["x-eventshop-event"] == "order.fulfilled"
    assert request["headers"]["idempotency-key"] == f"order-{order['id']}-fulfilled"
    payload = json.loads(request["body"])
    assert (payload["order_number"], payload["status"]) == (order["number"], "fulfilled")
    assert payload["tracking_number"] == stack.order(order["id"])["tracking_number"] != ""
    assert [(attempt, status_code, bool(ok)) for attempt, status_code, ok in rows] == [(1, 200, True)]
