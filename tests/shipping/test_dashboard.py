"""Shipping's staff dashboard: the shipments shipping holds, their labels and the workers that rendered them."""
import re

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from messaging.consumer import EventConsumer
from messaging.topology import SUBSCRIPTIONS
from shipping.models import Shipment
from tests.messaging.builders import RecordingRetryScheduler, delivery, envelope, purchase

pytestmark = pytest.mark.django_db(databases=["default", "shipping", "loyalty"])

DASHBOARD = "/dashboards/shipping/"
# A 1x1 PNG: what the label worker stores, in miniature.
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082")


@pytest.fixture(autouse=True)
def quiet_broker(settings):
    settings.BROKER_URL = "memory://"  # the consumer panel asks the broker: never the demo's


@pytest.fixture
def staff_browser(client, staff):
    client.force_login(staff)
    return client


def make_shipment(order_id: int, **fields) -> Shipment:
    defaults = dict(order_number=f"ES-TEST-{order_id}", customer_id=7, recipient_name="Ada", line1="1 Main St",
                    city="Berlin", postal_code="10115", country="DE", item_count=1,
                    tracking_number=f"TRK{order_id:09d}")
    return Shipment.objects.create(order_id=order_id, **{**defaults, **fields})


def with_label(shipment: Shipment, worker: str) -> Shipment:
    shipment.label.save(f"{shipment.tracking_number}.png", ContentFile(PNG), save=False)
    shipment.status = Shipment.Status.LABEL_READY
    shipment.label_rendered_by = worker
    shipment.save()
    return shipment


def row_of(html: str, shipment: Shipment) -> str:
    return re.search(rf'<tr data-shipment="{shipment.pk}">(.*?)</tr>', html, re.S).group(1)


def test_the_dashboard_has_its_name_and_address():
    assert reverse("shipping:dashboard") == DASHBOARD


def test_anonymous_visitors_are_sent_to_log_in_and_customers_are_refused(client, customer):
    response = client.get(DASHBOARD)
    assert response.status_code == 302 and response["Location"] == f"{reverse('shop:login')}?next={DASHBOARD}"

    client.force_login(customer)
    assert client.get(DASHBOARD).status_code == 403


def test_a_shipment_is_listed_with_its_order_status_tracking_country_worker_and_label(staff_browser):
    shipment = with_label(make_shipment(81, country="FR"), worker="label-host:4242")

    html = staff_browser.get(DASHBOARD).content.decode()

    row = row_of(html, shipment)
    assert "ES-TEST-81" in row and "#81" in row
    assert "label ready" in row and "<code>TRK000000081</code>" in row and "<td>FR</td>" in row
    assert "label-host:4242" in row
    assert shipment.label.url.startswith("/media/labels/TRK000000081")
    assert f'href="{shipment.label.url}"' in row and f'src="{shipment.label.url}"' in row


def test_a_shipment_awaiting_its_label_shows_no_label_and_no_worker(staff_browser):
    shipment = make_shipment(83)

    row = row_of(staff_browser.get(DASHBOARD).content.decode(), shipment)

    assert "awaiting label" in row and "<img" not in row
    assert re.search(r'<td class="worker">—</td>', row)


def test_labels_rendered_are_counted_per_worker(staff_browser):
    for order_id, worker in [(84, "host-a:1"), (85, "host-b:2"), (86, "host-a:1"), (87, "")]:
        shipment = make_shipment(order_id)
        if worker:
            with_label(shipment, worker=worker)

    html = staff_browser.get(DASHBOARD).content.decode()

    per_worker = re.findall(r'<tr data-worker="([^"]+)">.*?<td class="num" data-labels>(\d+)</td>', html, re.S)
    assert per_worker == [("host-a:1", "2"), ("host-b:2", "1")]


def test_the_latest_50_shipments_come_first_and_older_ones_are_on_the_next_page(staff_browser):
    shipments = [make_shipment(order_id) for order_id in range(1, 53)]

    first = staff_browser.get(DASHBOARD).content.decode()
    second = staff_browser.get(DASHBOARD, {"page": 2}).content.decode()

    assert len(re.findall(r'<tr data-shipment="', first)) == 50
    assert f'data-shipment="{shipments[-1].pk}"' in first and f'data-shipment="{shipments[0].pk}"' not in first
    assert re.findall(r'<tr data-shipment="(\d+)"', second) == [str(shipments[1].pk), str(shipments[0].pk)]
    assert 'href="?page=2#shipments"' in first


def test_the_dashboard_embeds_the_live_panel_of_the_shipping_consumer(staff_browser):
    consumer = EventConsumer(SUBSCRIPTIONS["shipping"])
    consumer.process(delivery(envelope(purchase(order_id=88))), RecordingRetryScheduler())

    html = staff_browser.get(DASHBOARD).content.decode()

    panel_url = reverse("consumers:consumer_panel", args=["shipping"])
    assert f'id="consumer-shipping" data-panel-url="{panel_url}?next=%2Fdashboards%2Fshipping%2F"' in html
    assert re.search(r'data-outcome="applied" data-window="total">1<', html)
    assert f'data-shipment="{Shipment.objects.get(order_id=88).pk}"' in html
