"""The demo scenarios the operations view starts: orders placed by the demo customer, as a crowd would."""
import pytest
from django.contrib.auth import get_user_model

from messaging.models import OutboxMessage
from shop import scenarios
from shop.models import Order, Product
from tests.factories import ProductFactory, UserFactory

# The spike runs in its own thread with its own connections: it must see committed data, and commit its own.
pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "shipping", "loyalty"])


def spike(orders: int, seconds: float = 0.1) -> scenarios.ScenarioProgress:
    thread = scenarios.traffic_spike_start(orders=orders, seconds=seconds)
    thread.join(timeout=30)
    assert not thread.is_alive()
    return scenarios.scenario_progress()


def test_a_traffic_spike_places_orders_with_their_events_as_the_demo_customer():
    ProductFactory(sku="MUG-01", stock=3)
    ProductFactory(sku="LAMP-01", stock=3)

    progress = spike(orders=8)

    orders = Order.objects.filter(customer__username="demo")
    assert orders.count() == 8
    events = OutboxMessage.objects.filter(event_type="shop.purchase.confirmed")
    assert sorted(events.values_list("subject", flat=True)) == sorted(str(order.pk) for order in orders)
    assert all(correlation_id.startswith("spike-") for correlation_id in events.values_list("correlation_id", flat=True))
    assert len(set(events.values_list("correlation_id", flat=True))) == 8  # one per order, as one per request
    assert (progress.placed, progress.skipped, progress.running, progress.error) == (8, 0, False, "")
    assert progress.finished_at >= progress.started_at


def test_a_traffic_spike_tops_up_the_stock_it_takes_and_leaves_the_catalogue_as_it_was():
    ProductFactory(sku="MUG-01", stock=2)
    ProductFactory(sku="LAMP-01", stock=1)

    spike(orders=10)

    assert dict(Product.objects.values_list("sku", "stock")) == {"MUG-01": 2, "LAMP-01": 1}
    assert Order.objects.count() == 10


def test_a_traffic_spike_orders_only_products_in_stock():
    ProductFactory(sku="MUG-01", stock=1)
    ProductFactory(sku="SOLD-OUT", stock=0)

    spike(orders=5)

    assert set(Order.objects.values_list("lines__sku", flat=True)) == {"MUG-01"}


def test_an_order_that_finds_no_stock_is_skipped_and_counted(monkeypatch):
    ProductFactory(sku="MUG-01", stock=2)
    monkeypatch.setattr(scenarios, "_stock_top_up", lambda plan: None)  # a customer bought the top-up first

    progress = spike(orders=5)

    assert (progress.placed, progress.skipped) == (2, 3)
    assert Order.objects.count() == 2 and Product.objects.get().stock == 0


def test_only_one_traffic_spike_runs_at_a_time():
    ProductFactory(stock=5)
    thread = scenarios.traffic_spike_start(orders=3, seconds=1.5)

    with pytest.raises(scenarios.ScenarioAlreadyRunning):
        scenarios.traffic_spike_start(orders=3, seconds=0)

    thread.join(timeout=30)
    assert Order.objects.count() == 3


def test_demo_orders_are_placed_by_the_existing_demo_customer():
    ProductFactory(stock=5)
    existing = UserFactory(username="demo")

    scenarios.demo_orders_place(count=2)

    assert set(Order.objects.values_list("customer_id", flat=True)) == {existing.pk}
    assert get_user_model().objects.filter(username="demo").count() == 1


def test_the_demo_customer_is_created_without_a_usable_password_when_seed_demo_did_not_run():
    ProductFactory(stock=5)

    [order] = scenarios.demo_orders_place(count=1)

    assert order.customer.username == "demo" and not order.customer.has_usable_password()


def test_there_is_nothing_to_order_without_products():
    with pytest.raises(ValueError, match="seed_demo"):
        scenarios.traffic_spike_start(orders=3, seconds=0)
