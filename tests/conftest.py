"""Fixtures shared by the whole suite."""
import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from tests.factories import ProductFactory, StaffUserFactory, UserFactory

# Real processes on real services, shared by tests/integration and tests/e2e.
pytest_plugins = ["tests.integration.backends"]

ADDRESS = {"name": "Ada Lovelace", "line1": "12 St James's Square", "city": "London", "postal_code": "SW1Y 4JH", "country": "GB"}


@pytest.fixture(autouse=True)
def cache_cleared():
    """The API throttles count requests in the cache (local memory in tests): none carry over."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def customer(db):
    return UserFactory()


@pytest.fixture
def staff(db):
    return StaffUserFactory()


@pytest.fixture
def product(db):
    return ProductFactory(sku="MUG-01", name="Enamel mug", price="12.50", stock=10)


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def customer_client(customer):
    client = APIClient()
    client.force_authenticate(customer)
    return client


@pytest.fixture
def staff_client(staff):
    client = APIClient()
    client.force_authenticate(staff)
    return client


@pytest.fixture
def address():
    return dict(ADDRESS)
