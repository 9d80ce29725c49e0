"""Property: whatever the broker does (duplicates, any order), the final state is the clean sequence's.

Each example draws a few orders (a total, cancelled or not), delivers every event of theirs one to
three times in any order to the real consumers (shipping, loyalty, loyalty-bonus), and compares the
outcome with twin orders that received the clean sequence exactly once.
"""
import itertools
import math
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from django.db.models import Sum

from loyalty.models import LoyaltyAccount, PointsTransaction
from messaging.consumer import EventConsumer
from messaging.events import order_value_band
from messaging.topology import SUBSCRIPTIONS
from shipping.models import Shipment
from tests.messaging.builders import RecordingRetryScheduler, cancellation, delivery, envelope, purchase

pytestmark = pytest.mark.django_db(databases=["default", "shipping", "loyalty"])

ids = itertools.count(1_000)
orders_strategy = st.lists(
    st.tuples(st.decimals(min_value=1, max_value=500, places=2), st.booleans()), min_size=1, max_size=4
)


def order_events(order_id: int, customer_id: int, total: Decimal, cancelled: bool) -> list:
    events = [envelope(purchase(order_id, customer_id=customer_id, total=str(total)), sequence=1)]
    if cancelled:
        events.append(envelope(cancellation(order_id, customer_id=customer_id, total=str(total)), sequence=2))
    return events


def deliver(events: list) -> None:
    """Hand each event to every subscriber whose bindings it matches, as the topic exchange would."""
    consumers = {name: EventConsumer(SUBSCRIPTIONS[name]) for name in ("shipping", "loyalty", "loyalty-bonus")}
    retries = RecordingRetryScheduler()
    for event in events:
        routing_key = event.event.routing_key()
        for name, consumer in consumers.items():
            if name == "loyalty-bonus" and not routing_key.endswith(".large"):
                continue
            if event.type in consumer.handlers:
                assert consumer.process(delivery(event), retries) in {"applied", "early", "stale", "duplicate"}
    assert retries.scheduled == []


def outcome(order_id: int, customer_id: int) -> tuple:
    shipment_active = Shipment.objects.filter(order_id=order_id).exclude(status=Shipment.Status.CANCELLED).exists()
    net_points = PointsTransaction.objects.filter(order_id=order_id).aggregate(net=Sum("points"))["net"] or 0
    balance = LoyaltyAccount.objects.filter(customer_id=customer_id).values_list("balance", flat=True).first() or 0
    return shipment_active, net_points, balance


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(orders=orders_strategy, data=st.data())
def test_any_interleaving_of_duplicates_and_reorderings_ends_in_the_clean_sequences_state(orders, data):
    messy_customer, clean_customer = next(ids), next(ids)
    messy, clean = [], []
    for total, cancelled in orders:
        messy_id, clean_id = next(ids), next(ids)
        messy.append((messy_id, total, cancelled))
        clean.append((clean_id, total, cancelled))
        deliver(order_events(clean_id, clean_customer, total, cancelled))

    copies = [event for order_id, total, cancelled in messy
              for event in order_events(order_id, messy_customer, total, cancelled)
              for _ in range(data.draw(st.integers(min_value=1, max_value=3)))]
    deliver(data.draw(st.permutations(copies)))

    for (messy_id, total, cancelled), (clean_id, _, _) in zip(messy, clean):
        messy_outcome, clean_outcome = outcome(messy_id, messy_customer), outcome(clean_id, clean_customer)
        assert messy_outcome == clean_outcome
        # And the clean outcome is the right one.
        expected_points = 0 if cancelled else math.floor(total) + (
            math.floor(total / 10) if order_value_band(total) == "large" else 0)
        assert clean_outcome[:2] == (not cancelled, expected_points)
        assert Shipment.objects.filter(order_id=messy_id).count() == 1
