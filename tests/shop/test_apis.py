"""The shop's REST API: tokens, the catalogue, placing, listing, showing and cancelling orders,
one error body for every refusal, and a schema that documents all of it."""
import json
import re

import pytest
from django.conf import settings as django_settings
from django.contrib.staticfiles import finders
from django.core.management import call_command
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from messaging.models import OutboxMessage
from shop.models import Order, Product
from tests.conftest import ADDRESS
from tests.factories import ProductFactory, UserFactory

ORDERS_URL = "/api/orders/"


def order_body(address, *items):
    return {"items": [{"sku": sku, "quantity": quantity} for sku, quantity in items], "shipping_address": address}


def place(client, address, *items, key=None):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post(ORDERS_URL, order_body(address, *(items or [("MUG-01", 2)])), format="json", headers=headers)


def assert_error(response, status_code, code, *field_paths):
    """Every refusal has the one body: a summary, a code and the reasons by field path."""
    assert response.status_code == status_code, response.content
    body = response.json()
    assert set(body) == {"detail", "code", "errors"}
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["code"] == code
    assert isinstance(body["errors"], dict)
    for reasons in body["errors"].values():
        assert reasons and all(isinstance(reason, str) and reason for reason in reasons)
    for path in field_paths:
        assert path in body["errors"], body["errors"]
    return body


def outbox_rows():
    return list(OutboxMessage.objects.using("default").order_by("sequence").values_list("event_type", "subject", "sequence"))


# --- tokens and authentication ---------------------------------------------------------------------


def test_a_customer_gets_a_token_with_their_password_and_uses_it_to_place_and_list_orders(db, product, address):
    UserFactory(username="ada", password="analytical-engine")
    client = APIClient()

    token_response = client.post("/api/auth/token/", {"username": "ada", "password": "analytical-engine"}, format="json")

    assert token_response.status_code == 200
    token = token_response.json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    placed = place(client, address)
    assert placed.status_code == 201
    listed = client.get(ORDERS_URL)
    assert listed.status_code == 200
    assert [order["number"] for order in listed.json()["results"]] == [placed.json()["number"]]
    assert Order.objects.get().customer.username == "ada"


def test_asking_for_a_token_twice_returns_the_same_token(db):
    UserFactory(username="ada", password="analytical-engine")
    client = APIClient()
    first = client.post("/api/auth/token/", {"username": "ada", "password": "analytical-engine"}, format="json")
    second = client.post("/api/auth/token/", {"username": "ada", "password": "analytical-engine"}, format="json")
    assert first.json()["token"] == second.json()["token"]


def test_a_wrong_password_gets_no_token_and_a_reason(db, api_client):
    UserFactory(username="ada", password="analytical-engine")
    response = api_client.post("/api/auth/token/", {"username": "ada", "password": "difference-engine"}, format="json")
    body = assert_error(response, 400, "ValidationError", "non_field_errors")
    assert "token" not in body
    assert "Unable to log in" in body["errors"]["non_field_errors"][0]


def test_a_token_request_without_a_password_names_the_missing_field(db, api_client):
    response = api_client.post("/api/auth/token/", {"username": "ada"}, format="json")
    assert_error(response, 400, "ValidationError", "password")


def test_a_stale_token_header_does_not_stop_a_client_getting_a_new_token(db, api_client):
    UserFactory(username="ada", password="analytical-engine")
    api_client.credentials(HTTP_AUTHORIZATION="Token revoked-long-ago")
    response = api_client.post("/api/auth/token/", {"username": "ada", "password": "analytical-engine"}, format="json")
    assert response.status_code == 200


@pytest.mark.parametrize(
    "method, url",
    [("get", ORDERS_URL), ("post", ORDERS_URL), ("get", "/api/orders/1/"), ("post", "/api/orders/1/cancel/")],
)
def test_anonymous_requests_to_the_order_api_get_401_with_a_token_challenge(db, api_client, method, url):
    response = getattr(api_client, method)(url, {}, format="json")
    assert_error(response, 401, "NotAuthenticated")
    assert response["WWW-Authenticate"] == "Token"


def test_an_unknown_token_gets_401(db, api_client, product, address):
    api_client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef")
    response = place(api_client, address)
    assert_error(response, 401, "AuthenticationFailed")
    assert Order.objects.count() == 0


# --- the catalogue ---------------------------------------------------------------------------------


def test_anyone_can_list_the_products_with_prices_as_two_decimal_strings_in_euros(db, api_client, product):
    response = api_client.get("/api/products/")
    assert response.status_code == 200
    assert response.json()["results"] == [
        {"sku": "MUG-01", "name": "Enamel mug", "description": "A fine thing.", "price": "12.50", "currency": "EUR", "stock": 10}
    ]


def test_the_product_list_is_paginated(db, api_client):
    ProductFactory.create_batch(3)
    response = api_client.get("/api/products/", {"limit": 2})
    assert response.json()["count"] == 3
    assert len(response.json()["results"]) == 2
    assert response.json()["next"]


# --- placing an order ------------------------------------------------------------------------------


def test_placing_an_order_prices_it_takes_the_stock_and_answers_201_with_the_order(customer_client, product, address):
    response = place(customer_client, address, ("MUG-01", 2))

    assert response.status_code == 201
    body = response.json()
    order = Order.objects.get()
    assert body["id"] == order.pk
    assert body["number"] == order.number
    assert body["status"] == "confirmed"
    assert body["total"] == "25.00"
    assert body["currency"] == "EUR"
    assert body["items"] == [{"sku": "MUG-01", "name": "Enamel mug", "quantity": 2, "unit_price": "12.50", "line_total": "25.00"}]
    assert body["shipping_address"] == address
    assert body["shipment_status"] == "" and body["tracking_number"] == ""
    assert body["points_awarded"] == 0 and body["points_reversed"] == 0
    assert body["created_at"]
    assert body["links"] == {"self": f"http://testserver/api/orders/{order.pk}/"}
    assert response["Location"] == body["links"]["self"]
    assert Product.objects.get(sku="MUG-01").stock == 8


def test_an_order_for_two_products_totals_every_line(customer_client, product, address):
    ProductFactory(sku="TEA-01", price="4.20", stock=5)
    response = place(customer_client, address, ("MUG-01", 1), ("TEA-01", 3))
    assert response.status_code == 201
    assert response.json()["total"] == "25.10"
    assert {item["sku"]: item["line_total"] for item in response.json()["items"]} == {"MUG-01": "12.50", "TEA-01": "12.60"}


def test_placing_an_order_records_one_purchase_confirmed_event_with_sequence_1(customer_client, product, address):
    order_id = place(customer_client, address).json()["id"]
    assert outbox_rows() == [("shop.purchase.confirmed", str(order_id), 1)]


def test_prices_sent_by_the_client_are_ignored(customer_client, product, address):
    body = order_body(address, ("MUG-01", 1))
    body["items"][0]["unit_price"] = "0.01"
    body["total"] = "0.01"
    response = customer_client.post(ORDERS_URL, body, format="json")
    assert response.status_code == 201
    assert response.json()["total"] == "12.50"


# --- idempotency -----------------------------------------------------------------------------------


def test_the_same_idempotency_key_and_body_replays_the_first_order_and_places_nothing_new(customer_client, product, address):
    first = place(customer_client, address, key="checkout-7f3a")
    replay = place(customer_client, address, key="checkout-7f3a")

    assert first.status_code == 201
    assert replay.status_code == 200
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    assert Order.objects.count() == 1
    assert Product.objects.get(sku="MUG-01").stock == 8
    assert len(outbox_rows()) == 1


def test_a_first_placement_is_not_marked_as_a_replay(customer_client, product, address):
    response = place(customer_client, address, key="checkout-7f3a")
    assert not response.has_header("Idempotent-Replayed")


def test_the_same_idempotency_key_with_a_different_body_is_refused_with_422(customer_client, product, address):
    place(customer_client, address, ("MUG-01", 2), key="checkout-7f3a")
    response = place(customer_client, address, ("MUG-01", 3), key="checkout-7f3a")

    assert_error(response, 422, "IdempotencyKeyReused", "Idempotency-Key")
    assert Order.objects.count() == 1
    assert Product.objects.get(sku="MUG-01").stock == 8


def test_two_customers_may_use_the_same_idempotency_key(customer_client, product, address):
    other = APIClient()
    other.force_authenticate(UserFactory())
    assert place(customer_client, address, key="checkout-1").status_code == 201
    assert place(other, address, key="checkout-1").status_code == 201
    assert Order.objects.count() == 2


def test_an_idempotency_key_of_255_characters_is_accepted(customer_client, product, address):
    response = place(customer_client, address, key="k" * 255)
    assert response.status_code == 201
    assert Order.objects.get().idempotency_key == "k" * 255


@pytest.mark.parametrize("key", ["k" * 256, "", "   ", "tab\there", "naïve-key"])
def test_an_idempotency_key_too_long_blank_or_not_visible_ascii_is_refused(customer_client, product, address, key):
    response = place(customer_client, address, key=key)
    assert_error(response, 400, "ValidationError", "Idempotency-Key")
    assert Order.objects.count() == 0


# --- what the shop refuses -------------------------------------------------------------------------


def test_an_unknown_sku_is_refused_with_its_name_and_takes_no_stock(customer_client, product, address):
    response = place(customer_client, address, ("MUG-01", 1), ("NOPE-99", 1))
    body = assert_error(response, 400, "OrderRejected", "items")
    assert body["errors"] == {"items": ["unknown sku: NOPE-99"]}
    assert Product.objects.get(sku="MUG-01").stock == 10
    assert Order.objects.count() == 0


def test_more_than_the_stock_is_refused_with_409_and_takes_nothing(customer_client, product, address):
    response = place(customer_client, address, ("MUG-01", 11))
    body = assert_error(response, 409, "OutOfStock", "items")
    assert body["errors"]["items"] == ["not enough stock for MUG-01: 10 left"]
    assert Product.objects.get(sku="MUG-01").stock == 10
    assert outbox_rows() == []


def test_the_same_sku_on_two_lines_counts_against_the_stock_together(customer_client, product, address):
    response = place(customer_client, address, ("MUG-01", 6), ("MUG-01", 5))
    assert_error(response, 409, "OutOfStock", "items")


@pytest.mark.parametrize("quantity", [0, -1, "2", 2.0, 2.5, True, False, None, 101, 10**30, [2], {"n": 2}])
def test_a_quantity_that_is_not_a_whole_number_from_1_to_100_is_refused(customer_client, product, address, quantity):
    response = place(customer_client, address, ("MUG-01", quantity))
    assert_error(response, 400, "ValidationError", "items.0.quantity")
    assert Order.objects.count() == 0


def test_the_reason_names_the_line_at_fault(customer_client, product, address):
    response = place(customer_client, address, ("MUG-01", 1), ("MUG-01", "three"))
    body = assert_error(response, 400, "ValidationError", "items.1.quantity")
    assert list(body["errors"]) == ["items.1.quantity"]
    assert body["detail"].startswith("items.1.quantity: ")


@pytest.mark.parametrize("items", [{"sku": "MUG-01", "quantity": 1}, "MUG-01", 3, None])
def test_items_that_are_not_a_list_are_refused(customer_client, product, address, items):
    response = customer_client.post(ORDERS_URL, {"items": items, "shipping_address": address}, format="json")
    assert_error(response, 400, "ValidationError", "items")


def test_an_order_with_no_items_is_refused(customer_client, product, address):
    response = customer_client.post(ORDERS_URL, {"items": [], "shipping_address": address}, format="json")
    assert_error(response, 400, "ValidationError", "items")


def test_an_item_without_a_sku_is_refused(customer_client, product, address):
    response = customer_client.post(ORDERS_URL, {"items": [{"quantity": 1}], "shipping_address": address}, format="json")
    assert_error(response, 400, "ValidationError", "items.0.sku")


def test_fifty_lines_are_accepted(customer_client, product, address):
    response = place(customer_client, address, *[("MUG-01", 1)] * 10, *[(ProductFactory().sku, 1) for _ in range(40)])
    assert response.status_code == 201
    assert len(response.json()["items"]) == 41  # the ten MUG-01 lines merge into one


def test_more_than_fifty_lines_are_refused(customer_client, product, address):
    response = place(customer_client, address, *[("MUG-01", 1)] * 51)
    assert_error(response, 400, "ValidationError", "items")
    assert Order.objects.count() == 0


def test_an_order_without_a_shipping_address_is_refused(customer_client, product):
    response = customer_client.post(ORDERS_URL, {"items": [{"sku": "MUG-01", "quantity": 1}]}, format="json")
    assert_error(response, 400, "ValidationError", "shipping_address")


@pytest.mark.parametrize(
    "field, value",
    [
        ("country", "gb"),
        ("country", "GBR"),
        ("country", "G"),
        ("country", "G1"),
        ("country", "ÄB"),
        ("country", 44),
        ("name", ""),
        ("line1", "   "),
        ("city", None),
        ("postal_code", "9" * 21),
        ("name", "x" * 201),
        ("line1", "x" * 201),
        ("city", "x" * 101),
        ("name", "nul\x00byte"),
        ("name", ["Ada"]),
    ],
)
def test_a_bad_shipping_address_field_is_refused_with_its_path(customer_client, product, address, field, value):
    address[field] = value
    response = place(customer_client, address)
    assert_error(response, 400, "ValidationError", f"shipping_address.{field}")
    assert Order.objects.count() == 0


@pytest.mark.parametrize("field", ["name", "line1", "city", "postal_code", "country"])
def test_a_shipping_address_missing_a_field_is_refused(customer_client, product, address, field):
    del address[field]
    response = place(customer_client, address)
    assert_error(response, 400, "ValidationError", f"shipping_address.{field}")


def test_the_longest_address_the_database_holds_is_accepted(customer_client, product, address):
    address.update(name="n" * 200, line1="l" * 200, city="c" * 100, postal_code="p" * 20)
    assert place(customer_client, address).status_code == 201


@pytest.mark.parametrize("raw", [b"{", b"{'items': []}", b"nonsense", b"[" * 100_000, b'{"items": NaN}'])
def test_a_body_that_is_not_json_is_refused_with_400(customer_client, product, raw):
    response = customer_client.post(ORDERS_URL, raw, content_type="application/json")
    assert_error(response, 400, "ParseError")


def test_a_quantity_too_large_for_a_float_is_refused(customer_client, product, address):
    raw = json.dumps(order_body(address, ("MUG-01", 1))).replace('"quantity": 1', '"quantity": 1e999999')
    response = customer_client.post(ORDERS_URL, raw, content_type="application/json")
    assert_error(response, 400, "ValidationError", "items.0.quantity")


@pytest.mark.parametrize("body", [[], "order", 42, None])
def test_a_json_body_that_is_not_an_object_is_refused(customer_client, product, body):
    response = customer_client.post(ORDERS_URL, json.dumps(body), content_type="application/json")
    assert_error(response, 400, "ValidationError", "non_field_errors")


def test_a_form_encoded_body_is_refused_as_unsupported(customer_client, product):
    response = customer_client.post(ORDERS_URL, "items=MUG-01", content_type="application/x-www-form-urlencoded")
    assert_error(response, 415, "UnsupportedMediaType")


# Arbitrary JSON, and JSON shaped almost like an order, so the fuzzing reaches past the first check.
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.text(st.characters(categories=["Cs", "Cc"]), max_size=3)  # lone surrogates and NUL survive json.dumps
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
any_items = st.fixed_dictionaries(
    {},
    optional={
        "sku": st.sampled_from(["MUG-01", "mug-01", "", "NOPE"]) | json_values,
        "quantity": st.integers(min_value=-3, max_value=120) | json_values,
    },
)
likely_items = st.fixed_dictionaries({"sku": st.sampled_from(["MUG-01", "MUG-01", "NOPE"]), "quantity": st.integers(-1, 12)})
any_addresses = st.fixed_dictionaries(
    {},
    optional={
        "name": st.text(max_size=210) | json_values,
        "line1": st.text(max_size=30) | json_values,
        "city": st.text(max_size=30) | json_values,
        "postal_code": st.text(max_size=25) | json_values,
        "country": st.sampled_from(["GB", "gb", "FR", "XX", "G"]) | json_values,
    },
)
order_bodies = st.one_of(
    # Well-formed enough to reach the service: some are placed, some run out of stock.
    st.fixed_dictionaries(
        {"items": st.lists(likely_items, min_size=1, max_size=3), "shipping_address": st.just(ADDRESS) | any_addresses}
    ),
    st.fixed_dictionaries(
        {},
        optional={
            "items": st.lists(any_items | likely_items, max_size=4)
            | st.lists(likely_items, min_size=50, max_size=52)
            | json_values,
            "shipping_address": any_addresses | json_values,
        },
    ),
    json_values,
)
idempotency_keys = st.none() | st.sampled_from(["retry-1", "retry-2"]) | st.text(max_size=10) | st.text(min_size=250, max_size=260)


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=order_bodies, key=idempotency_keys)
def test_no_request_body_makes_the_order_api_fail_with_a_server_error(customer_client, product, body, key):
    Product.objects.filter(sku="MUG-01").update(stock=10)  # each example starts from a full shelf
    headers = {"Idempotency-Key": key} if key is not None else {}
    response = customer_client.post(ORDERS_URL, json.dumps(body), content_type="application/json", headers=headers)

    event(f"status {response.status_code}")  # --hypothesis-show-statistics shows how far bodies got
    assert response.status_code < 500
    if response.status_code >= 400:
        assert_error(response, response.status_code, response.json()["code"])
    else:
        taken = sum(item["quantity"] for item in response.json()["items"]) if response.status_code == 201 else 0
        assert response.status_code in (200, 201)
        assert Product.objects.get(sku="MUG-01").stock == 10 - taken  # a replay (200) takes nothing


# --- listing, showing and cancelling ---------------------------------------------------------------


def test_a_customer_lists_only_their_own_orders_newest_first(customer_client, customer, product, address):
    other = APIClient()
    other.force_authenticate(UserFactory())
    place(other, address)
    first = place(customer_client, address).json()
    second = place(customer_client, address).json()

    response = customer_client.get(ORDERS_URL)

    assert response.status_code == 200
    assert response.json()["count"] == 2
    assert [order["id"] for order in response.json()["results"]] == [second["id"], first["id"]]


def test_staff_list_every_customers_orders(staff_client, customer_client, product, address):
    place(customer_client, address)
    other = APIClient()
    other.force_authenticate(UserFactory())
    place(other, address)
    assert staff_client.get(ORDERS_URL).json()["count"] == 2


def test_the_order_list_is_paginated_with_limit_and_offset(customer_client, product, address):
    for _ in range(3):
        place(customer_client, address, ("MUG-01", 1))
    page = customer_client.get(ORDERS_URL, {"limit": 2, "offset": 2}).json()
    assert page["count"] == 3
    assert len(page["results"]) == 1
    assert page["previous"]


def test_a_customer_sees_their_order(customer_client, product, address):
    placed = place(customer_client, address).json()
    response = customer_client.get(f"/api/orders/{placed['id']}/")
    assert response.status_code == 200
    assert response.json() == placed


def test_another_customers_order_is_not_found(customer_client, product, address):
    other = APIClient()
    other.force_authenticate(UserFactory())
    order_id = place(other, address).json()["id"]
    assert_error(customer_client.get(f"/api/orders/{order_id}/"), 404, "NotFound")


def test_staff_see_any_order(staff_client, customer_client, product, address):
    order_id = place(customer_client, address).json()["id"]
    assert staff_client.get(f"/api/orders/{order_id}/").status_code == 200


@pytest.mark.parametrize("order_id", ["999999", str(2**63), "9" * 40])
def test_an_order_that_does_not_exist_is_not_found(customer_client, order_id):
    assert_error(customer_client.get(f"/api/orders/{order_id}/"), 404, "NotFound")


def test_cancelling_an_order_puts_the_stock_back_and_records_one_cancellation_event(customer_client, product, address):
    order_id = place(customer_client, address, ("MUG-01", 2)).json()["id"]

    response = customer_client.post(f"/api/orders/{order_id}/cancel/")

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["id"] == order_id
    assert Product.objects.get(sku="MUG-01").stock == 10
    assert outbox_rows() == [
        ("shop.purchase.confirmed", str(order_id), 1),
        ("shop.order.cancelled", str(order_id), 2),
    ]


def test_cancelling_twice_answers_200_and_changes_nothing(customer_client, product, address):
    order_id = place(customer_client, address, ("MUG-01", 2)).json()["id"]
    first = customer_client.post(f"/api/orders/{order_id}/cancel/")

    second = customer_client.post(f"/api/orders/{order_id}/cancel/")

    assert second.status_code == 200
    assert second.json() == first.json()
    assert Product.objects.get(sku="MUG-01").stock == 10
    assert len(outbox_rows()) == 2


def test_another_customer_cannot_cancel_an_order(customer_client, product, address):
    other = APIClient()
    other.force_authenticate(UserFactory())
    order_id = place(customer_client, address).json()["id"]

    response = other.post(f"/api/orders/{order_id}/cancel/")

    assert_error(response, 404, "NotFound")
    assert Order.objects.get(pk=order_id).status == "confirmed"
    assert Product.objects.get(sku="MUG-01").stock == 8


def test_staff_can_cancel_any_order(staff_client, customer_client, product, address):
    order_id = place(customer_client, address).json()["id"]
    assert staff_client.post(f"/api/orders/{order_id}/cancel/").json()["status"] == "cancelled"


def test_orders_cannot_be_changed_or_deleted_through_the_api(customer_client, product, address):
    order_id = place(customer_client, address).json()["id"]
    assert_error(customer_client.delete(f"/api/orders/{order_id}/"), 405, "MethodNotAllowed")
    assert_error(customer_client.put(f"/api/orders/{order_id}/", {}, format="json"), 405, "MethodNotAllowed")
    assert Order.objects.filter(pk=order_id).exists()


# --- the schema and its documentation --------------------------------------------------------------

API_PATHS = {
    "/api/auth/token/": {"post"},
    "/api/products/": {"get"},
    "/api/orders/": {"get", "post"},
    "/api/orders/{order_id}/": {"get"},
    "/api/orders/{order_id}/cancel/": {"post"},
    "/api/shipping/shipments/": {"get"},
    "/api/loyalty/transactions/": {"get"},
    "/api/loyalty/accounts/{customer_id}/": {"get"},
}


def test_the_openapi_schema_documents_every_endpoint_with_its_error_responses(db, api_client):
    response = api_client.get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    schema = json.loads(response.content)
    for path, methods in API_PATHS.items():
        assert path in schema["paths"], path
        assert methods <= set(schema["paths"][path]), path
    place_responses = schema["paths"]["/api/orders/"]["post"]["responses"]
    assert {"200", "201", "400", "401", "409", "422"} <= set(place_responses)
    assert place_responses["409"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert "Idempotency-Key" in [p["name"] for p in schema["paths"]["/api/orders/"]["post"]["parameters"]]
    assert schema["components"]["schemas"]["OrderPlaceRequest"]["properties"]["items"]["description"].startswith("1 to 50 lines")


def test_the_schema_generates_without_warnings_and_validates(db, tmp_path):
    # Fails on any view whose request or response drf-spectacular has to guess.
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", str(tmp_path / "schema.yaml"))
    assert "/api/orders/{order_id}/cancel/" in (tmp_path / "schema.yaml").read_text()


def test_the_api_docs_page_loads_its_assets_from_this_server_not_a_cdn(db, api_client):
    response = api_client.get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assets = re.findall(r'<script[^>]*\ssrc="([^"]+)"', html) + re.findall(r'<link[^>]*\shref="([^"]+)"', html)
    assert assets
    for asset in assets:
        assert not re.match(r"(https?:)?//", asset), asset
        assert asset.startswith(f"/{django_settings.STATIC_URL.strip('/')}/"), asset
        assert finders.find(asset.split("?")[0].split("/", 2)[2]), f"{asset} is not a local static file"
