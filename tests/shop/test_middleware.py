"""The correlation id: taken from the request or made up, returned, stamped on events and on log lines."""
import io
import logging
import re

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from messaging.models import OutboxMessage
from messaging.correlation import current_correlation_id
from rest_framework.test import APIClient

from shop.middleware import CorrelationIdLogFilter, CorrelationIdMiddleware
from shop.models import Order

pytestmark = pytest.mark.django_db(databases=["default", "shipping", "loyalty"])


def test_a_sane_correlation_id_from_the_client_comes_back_in_the_response(client):
    response = client.get("/", HTTP_X_CORRELATION_ID="abc-123")

    assert response["X-Correlation-ID"] == "abc-123"


@pytest.mark.parametrize("sent", [None, "", "x" * 65, "two words", "semi;colon", "new\nline", "ümlaut"])
def test_a_missing_or_unsafe_correlation_id_is_replaced_by_a_fresh_one(client, sent):
    headers = {} if sent is None else {"HTTP_X_CORRELATION_ID": sent}

    first = client.get("/", **headers)["X-Correlation-ID"]
    second = client.get("/", **headers)["X-Correlation-ID"]

    assert re.fullmatch(r"[0-9a-f]{32}", first) and first != second


def test_the_longest_sane_correlation_id_is_kept(client):
    sent = "A.b_c-9" * 9 + "0"  # 64 characters

    assert client.get("/", HTTP_X_CORRELATION_ID=sent)["X-Correlation-ID"] == sent


def test_an_order_placed_through_the_api_carries_the_requests_correlation_id(customer_client, product, address):
    response = customer_client.post("/api/orders/", {"items": [{"sku": product.sku, "quantity": 1}],
                                                     "shipping_address": address},
                                    format="json", HTTP_X_CORRELATION_ID="abc-123")

    assert response.status_code == 201, response.content
    assert response["X-Correlation-ID"] == "abc-123"
    assert OutboxMessage.objects.get(subject=str(response.json()["id"])).correlation_id == "abc-123"


def test_the_correlation_id_is_set_only_while_the_request_runs_even_when_the_view_fails():
    seen = []

    def failing_view(request):
        seen.append(current_correlation_id.get())
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        CorrelationIdMiddleware(failing_view)(RequestFactory().get("/", HTTP_X_CORRELATION_ID="abc-123"))

    assert seen == ["abc-123"]
    assert current_correlation_id.get() == ""


def test_log_records_written_during_a_request_carry_its_correlation_id():
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Keep()
    handler.addFilter(CorrelationIdLogFilter())
    logger = logging.getLogger("tests.correlation")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)

    def view(request):
        logger.info("inside")
        return HttpResponse("ok")

    try:
        CorrelationIdMiddleware(view)(RequestFactory().get("/", HTTP_X_CORRELATION_ID="abc-123"))
        logger.info("outside")
    finally:
        logger.removeHandler(handler)

    assert [(record.getMessage(), record.correlation_id) for record in records] == [("inside", "abc-123"), ("outside", "-")]


@pytest.mark.django_db(databases=["default"])
def test_the_order_remembers_the_correlation_id_of_the_request_that_placed_it(customer, product, address):
    client = APIClient()
    client.force_authenticate(customer)

    response = client.post("/api/orders/", {"items": [{"sku": "MUG-01", "quantity": 1}], "shipping_address": address},
                           format="json", HTTP_X_CORRELATION_ID="checkout-42")

    assert response.status_code == 201
    assert Order.objects.get(pk=response.json()["id"]).correlation_id == "checkout-42"


def test_every_log_line_names_the_correlation_id_of_its_request():
    import logging.config

    from django.conf import settings as django_settings

    stream = io.StringIO()
    config = {**django_settings.LOGGING, "handlers": {"console": {
        **django_settings.LOGGING["handlers"]["console"], "stream": stream}}}
    logging.config.dictConfig(config)
    token = current_correlation_id.set("req-77")
    try:
        logging.getLogger("eventshop.test").warning("shipment created")
    finally:
        current_correlation_id.reset(token)
        logging.config.dictConfig(django_settings.LOGGING)

    assert "[req-77] shipment created" in stream.getvalue()
