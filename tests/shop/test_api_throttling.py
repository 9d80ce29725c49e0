"""Rate limits on token login (per address) and on placing orders (per user): 429 with Retry-After,
load testers exempt from the order limit, `off` for none. The test settings turn both off; each
test here sets the rate it tests (tests/conftest.py clears the counts between tests)."""
import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured
from rest_framework.test import APIClient

from config.api_throttles import LOAD_TESTERS_GROUP
from config.settings.env import env_throttle_rate
from tests.factories import UserFactory

TOKEN_URL = "/api/auth/token/"
ORDERS_URL = "/api/orders/"
CREDENTIALS = {"username": "ada", "password": "analytical-engine"}


@pytest.fixture
def ada(db):
    return UserFactory(username="ada", password="analytical-engine")


def log_in(client, credentials=CREDENTIALS, **extra):
    return client.post(TOKEN_URL, credentials, format="json", **extra)


def place(client, address, key):
    body = {"items": [{"sku": "MUG-01", "quantity": 1}], "shipping_address": address}
    return client.post(ORDERS_URL, body, format="json", headers={"Idempotency-Key": key})


def assert_throttled(response):
    assert response.status_code == 429, response.content
    assert response.json()["code"] == "Throttled"
    assert 0 < int(response.headers["Retry-After"]) <= 60


def test_the_login_after_the_limit_gets_429_with_retry_after(ada, api_client, settings):
    settings.EVENTSHOP_THROTTLE_LOGIN = "3/min"

    answers = [log_in(api_client).status_code for _ in range(3)]
    fourth = log_in(api_client)

    assert answers == [200, 200, 200]
    assert_throttled(fourth)


def test_wrong_passwords_count_towards_the_login_limit(ada, api_client, settings):
    settings.EVENTSHOP_THROTTLE_LOGIN = "2/min"
    wrong = {**CREDENTIALS, "password": "difference-engine"}

    assert [log_in(api_client, wrong).status_code for _ in range(2)] == [400, 400]
    assert_throttled(log_in(api_client))


def test_the_login_limit_counts_each_address_apart(ada, api_client, settings):
    settings.EVENTSHOP_THROTTLE_LOGIN = "1/min"

    assert log_in(api_client, REMOTE_ADDR="192.0.2.1").status_code == 200
    assert log_in(api_client, REMOTE_ADDR="192.0.2.2").status_code == 200
    assert_throttled(log_in(api_client, REMOTE_ADDR="192.0.2.1"))


def test_a_forged_x_forwarded_for_does_not_escape_the_limit_without_trusted_proxies(ada, api_client, settings):
    settings.EVENTSHOP_THROTTLE_LOGIN = "1/min"

    assert log_in(api_client, HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 200
    assert_throttled(log_in(api_client, HTTP_X_FORWARDED_FOR="198.51.100.2"))


def test_behind_one_trusted_proxy_the_client_address_comes_from_x_forwarded_for(ada, api_client, settings):
    settings.EVENTSHOP_THROTTLE_LOGIN = "1/min"
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}

    assert log_in(api_client, HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 200
    assert log_in(api_client, HTTP_X_FORWARDED_FOR="198.51.100.2").status_code == 200
    assert_throttled(log_in(api_client, HTTP_X_FORWARDED_FOR="198.51.100.1"))


def test_off_disables_the_login_limit(ada, api_client, settings):
    settings.EVENTSHOP_THROTTLE_LOGIN = None

    assert {log_in(api_client).status_code for _ in range(30)} == {200}


def test_the_order_after_the_limit_gets_429_and_listing_stays_open(customer_client, product, address, settings):
    settings.EVENTSHOP_THROTTLE_ORDERS = "2/min"

    placed = [place(customer_client, address, f"key-{n}").status_code for n in range(2)]
    third = place(customer_client, address, "key-2")

    assert placed == [201, 201]
    assert_throttled(third)
    assert customer_client.get(ORDERS_URL).status_code == 200


def test_the_order_limit_counts_each_customer_apart(customer_client, product, address, settings):
    settings.EVENTSHOP_THROTTLE_ORDERS = "1/min"
    other = APIClient()
    other.force_authenticate(UserFactory())

    assert place(customer_client, address, "mine").status_code == 201
    assert place(other, address, "theirs").status_code == 201
    assert_throttled(place(customer_client, address, "mine-again"))


def test_a_load_tester_is_not_throttled_on_orders(customer, customer_client, product, address, settings):
    settings.EVENTSHOP_THROTTLE_ORDERS = "1/min"
    customer.groups.add(Group.objects.create(name=LOAD_TESTERS_GROUP))

    assert {place(customer_client, address, f"load-{n}").status_code for n in range(5)} == {201}


def test_off_disables_the_order_limit(customer_client, product, address, settings):
    settings.EVENTSHOP_THROTTLE_ORDERS = None

    assert {place(customer_client, address, f"key-{n}").status_code for n in range(5)} == {201}


@pytest.mark.parametrize(("value", "rate"), [("10/min", "10/min"), ("60/MIN", "60/min"), ("5/s", "5/s"),
                                             ("off", None), (" OFF ", None)])
def test_a_throttle_rate_is_read_from_the_environment(monkeypatch, value, rate):
    monkeypatch.setenv("EVENTSHOP_THROTTLE_LOGIN", value)

    assert env_throttle_rate("EVENTSHOP_THROTTLE_LOGIN", "10/min") == rate


@pytest.mark.parametrize("value", ["ten a minute", "10", "10/fortnight", "/min", ""])
def test_a_malformed_throttle_rate_stops_start_up_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv("EVENTSHOP_THROTTLE_ORDERS", value)

    with pytest.raises(ImproperlyConfigured, match="EVENTSHOP_THROTTLE_ORDERS"):
        env_throttle_rate("EVENTSHOP_THROTTLE_ORDERS", "60/min")
