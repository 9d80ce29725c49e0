"""Loyalty's REST API: a customer's points, and the ledger staff read by order."""
import ast
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from loyalty.models import LoyaltyAccount, PointsTransaction
from tests.factories import UserFactory

SERVICE_DATABASES = ["default", "shipping", "loyalty"]
TRANSACTIONS_URL = "/api/loyalty/transactions/"


def account_url(customer_id):
    return f"/api/loyalty/accounts/{customer_id}/"


def make_account(customer_id, balance=0):
    return LoyaltyAccount.objects.create(customer_id=customer_id, email=f"c{customer_id}@example.com", balance=balance)


def make_transaction(account, order_id, kind=PointsTransaction.Kind.AWARD, points=25, **fields):
    return PointsTransaction.objects.create(
        account=account, order_id=order_id, kind=kind, points=points, event_id=uuid.uuid4(), **fields
    )


@pytest.mark.django_db(databases=SERVICE_DATABASES)
def test_staff_list_the_points_transactions_of_an_order_with_the_customer(staff_client):
    account = make_account(7, balance=0)
    award = make_transaction(account, 41, points=25)
    reversal = make_transaction(account, 41, kind=PointsTransaction.Kind.REVERSAL, points=-25)
    make_transaction(make_account(8), 42)

    response = staff_client.get(TRANSACTIONS_URL, {"order": 41})

    assert response.status_code == 200
    results = response.json()["results"]
    assert [(t["id"], t["customer_id"], t["order_id"], t["kind"], t["points"]) for t in results] == [
        (reversal.pk, 7, 41, "reversal", -25),
        (award.pk, 7, 41, "award", 25),
    ]
    assert set(results[0]) == {"id", "customer_id", "order_id", "kind", "points", "created_at"}


@pytest.mark.django_db(databases=SERVICE_DATABASES)
@pytest.mark.parametrize("order", ["abc", "1.5", "-1"])
def test_an_order_filter_that_is_not_a_positive_integer_is_refused(staff_client, order):
    response = staff_client.get(TRANSACTIONS_URL, {"order": order})
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["order"]


@pytest.mark.django_db(databases=SERVICE_DATABASES)
def test_customers_may_not_read_the_ledger(customer_client):
    make_transaction(make_account(7), 41)
    response = customer_client.get(TRANSACTIONS_URL, {"order": 41})
    assert response.status_code == 403
    assert response.json()["code"] == "PermissionDenied"


@pytest.mark.django_db(databases=SERVICE_DATABASES)
def test_anonymous_requests_for_the_ledger_get_401(api_client):
    assert api_client.get(TRANSACTIONS_URL).status_code == 401


@pytest.mark.django_db(databases=SERVICE_DATABASES)
def test_a_customer_sees_their_balance_and_transactions_newest_first(customer, customer_client):
    account = make_account(customer.pk, balance=40)
    older = make_transaction(account, 41, points=15, created_at=timezone.now() - timedelta(days=1))
    newer = make_transaction(account, 42, points=25)

    response = customer_client.get(account_url(customer.pk))

    assert response.status_code == 200
    body = response.json()
    assert body["customer_id"] == customer.pk
    assert body["balance"] == 40
    assert [(t["id"], t["order_id"], t["points"], t["customer_id"]) for t in body["transactions"]] == [
        (newer.pk, 42, 25, customer.pk),
        (older.pk, 41, 15, customer.pk),
    ]


@pytest.mark.django_db(databases=SERVICE_DATABASES)
def test_an_account_shows_only_its_latest_50_transactions(customer, customer_client):
    account = make_account(customer.pk, balance=55)
    start = timezone.now() - timedelta(days=1)
    for order_id in range(1, 56):
        make_transaction(account, order_id, points=1, created_at=start + timedelta(minutes=order_id))

    transactions = customer_client.get(account_url(customer.pk)).json()["transactions"]

    assert len(transactions) == 50
    assert [t["order_id"] for t in transactions] == list(range(55, 5, -1))


@pytest.mark.django_db(databases=SERVICE_DATABASES)
def test_a_customer_with_no_account_yet_sees_a_zero_balance(customer, customer_client):
    make_account(customer.pk + 1000, balance=99)
    response = customer_client.get(account_url(customer.pk))
    assert response.status_code == 200
    assert response.json() == {"customer_id": customer.pk, "balance": 0, "transactions": []}
    assert not LoyaltyAccount.objects.filter(customer_id=customer.pk).exists()  # reading creates nothing


@pytest.mark.django_db(databases=SERVICE_DATABASES)
def test_another_customers_account_is_not_found(customer_client):
    other = UserFactory()
    make_transaction(make_account(other.pk, balance=25), 41)
    response = customer_client.get(account_url(other.pk))
    assert response.status_code == 404
    assert response.json()["code"] == "NotFound"
    assert "balance" not in response.json()


@pytest.mark.django_db(databases=SERVICE_DATABASES)
def test_staff_see_any_customers_account(staff_client, customer):
    make_transaction(make_account(customer.pk, balance=25), 41)
    response = staff_client.get(account_url(customer.pk))
    assert response.status_code == 200
    assert response.json()["balance"] == 25
    assert len(response.json()["transactions"]) == 1


@pytest.mark.django_db(databases=SERVICE_DATABASES)
def test_staff_asking_for_an_account_loyalty_has_never_seen_get_404(staff_client):
    assert staff_client.get(account_url(123456)).status_code == 404


@pytest.mark.django_db(databases=SERVICE_DATABASES)
def test_anonymous_requests_for_an_account_get_401(api_client, customer):
    response = api_client.get(account_url(customer.pk))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_the_loyalty_api_does_not_import_the_shops_code():
    # Loyalty owns its data and knows customers only by id.
    tree = ast.parse(Path(__file__).resolve().parents[2].joinpath("loyalty", "apis.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    shop_modules = {name for name in imported if name == "shop" or name.startswith("shop.")}
    assert shop_modules == set()
