"""Shipping's REST API: staff look up the shipments the shipping service made for an order."""
import ast
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from shipping.models import Shipment

SERVICE_DATABASES = ["default", "shipping", "loyalty"]
SHIPMENTS_URL = "/api/shipping/shipments/"


def make_shipment(order_id, **fields):
    defaults = dict(
        order_number=f"ES-261126-{order_id:08X}",
        customer_id=7,
        recipient_name="Ada Lovelace",
        line1="12 St James's Square",
        city="London",
        postal_code="SW1Y 4JH",
        country="GB",
        item_count=2,
        tracking_number=f"TRK{order_id:09d}",
    )
    return Shipment.objects.create(order_id=order_id, **{**defaults, **fields})


@pytest.mark.django_db(databases=SERVICE_DATABASES)
def test_staff_find_the_shipment_for_an_order_with_an_absolute_label_url(staff_client):
    shipment = make_shipment(41, status=Shipment.Status.LABEL_READY)
    shipment.label.save("TRK000000041.pdf", ContentFile(b"%PDF-1.4 label"))
    make_shipment(42)

    response = staff_client.get(SHIPMENTS_URL, {"order": 41})

    assert response.status_code == 200
    assert response.json()["count"] == 1
    found = response.json()["results"][0]
    assert found == {
        "id": shipment.pk,
        "order_id": 41,
        "order_number": "ES-261126-00000029",
        "status": "label_ready",
        "tracking_number": "TRK000000041",
        "recipient_name": "Ada Lovelace",
        "city": "London",
        "postal_code": "SW1Y 4JH",
        "country": "GB",
        "item_count": 2,
        "label_url": f"http://testserver{shipment.label.url}",
        "created_at": found["created_at"],
        "cancelled_at": None,
        "cancelled_before_purchase": False,
    }
    assert found["label_url"].startswith("http://testserver/media/labels/")
    assert found["created_at"]


@pytest.mark.django_db(databases=SERVICE_DATABASES)
def test_a_shipment_still_awaiting_its_label_has_no_label_url(staff_client):
    make_shipment(41)
    assert staff_client.get(SHIPMENTS_URL, {"order": 41}).json()["results"][0]["label_url"] is None


@pytest.mark.django_db(databases=SERVICE_DATABASES)
def test_a_cancellation_that_arrived_before_the_purchase_shows_as_such(staff_client):
    cancelled_at = timezone.now()
    make_shipment(41, status=Shipment.Status.CANCELLED, cancelled_at=cancelled_at, cancelled_before_purchase=True)
    found = staff_client.get(SHIPMENTS_URL, {"order": 41}).json()["results"][0]
    assert found["status"] == "cancelled"
    assert found["cancelled_before_purchase"] is True
    assert found["cancelled_at"] == cancelled_at.isoformat().replace("+00:00", "Z")


@pytest.mark.django_db(databases=SERVICE_DATABASES)
def test_an_order_with_no_shipment_yet_gives_an_empty_list(staff_client):
    make_shipment(41)
    response = staff_client.get(SHIPMENTS_URL, {"order": 99})
    assert response.status_code == 200
    assert response.json()["results"] == []


@pytest.mark.django_db(databases=SERVICE_DATABASES)
def test_without_an_order_filter_staff_page_through_every_shipment(staff_client):
    for order_id in (41, 42, 43):
        make_shipment(order_id)
    page = staff_client.get(SHIPMENTS_URL, {"limit": 2}).json()
    assert page["count"] == 3
    assert len(page["results"]) == 2


@pytest.mark.django_db(databases=SERVICE_DATABASES)
@pytest.mark.parametrize("order", ["abc", "4.5", "0", "-3", "1 OR 1=1"])
def test_an_order_filter_that_is_not_a_positive_integer_is_refused(staff_client, order):
    response = staff_client.get(SHIPMENTS_URL, {"order": order})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "ValidationError"
    assert list(body["errors"]) == ["order"]


@pytest.mark.django_db(databases=SERVICE_DATABASES)
def test_an_order_id_beyond_any_database_integer_finds_nothing(staff_client):
    response = staff_client.get(SHIPMENTS_URL, {"order": str(10**30)})
    assert response.status_code == 200
    assert response.json()["results"] == []


@pytest.mark.django_db(databases=SERVICE_DATABASES)
def test_customers_may_not_list_shipments(customer_client):
    make_shipment(41)
    response = customer_client.get(SHIPMENTS_URL, {"order": 41})
    assert response.status_code == 403
    assert response.json()["code"] == "PermissionDenied"
    assert "results" not in response.json()


@pytest.mark.django_db(databases=SERVICE_DATABASES)
def test_anonymous_requests_for_shipments_get_401(api_client):
    response = api_client.get(SHIPMENTS_URL)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_the_shipping_api_does_not_import_the_shops_code():
    # Shipping owns its data and knows orders only by id.
    tree = ast.parse(Path(__file__).resolve().parents[2].joinpath("shipping", "apis.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    shop_modules = {name for name in imported if name == "shop" or name.startswith("shop.")}
    assert shop_modules == set()
