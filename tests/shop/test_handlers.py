"""The shop's listener: what it makes of an order's reports does not depend on their arrival order."""
import itertools

import pytest

from messaging.consumer import EventConsumer
from messaging.events import PointsAwarded, PointsReversed, ShipmentCancelled, ShipmentCreated, ShippingLabelRendered
from messaging.topology import SUBSCRIPTIONS
from shop.models import Order
from shop.services import OrderItem, ShippingAddress, order_place
from tests.messaging.builders import RecordingRetryScheduler, delivery, envelope

pytestmark = pytest.mark.django_db(databases=["default", "shipping", "loyalty"])


def reports(order_id: int) -> list:
    return [
        envelope(ShipmentCreated(shipment_id=1, order_id=order_id, tracking_number="TRK1", country="DE"), sequence=1),
        envelope(ShippingLabelRendered(shipment_id=1, order_id=order_id, label_url="/media/labels/TRK1.png"), sequence=2),
        envelope(PointsAwarded(order_id=order_id, customer_id=1, points=25, balance=25), sequence=1),
        envelope(PointsAwarded(order_id=order_id, customer_id=1, points=2, balance=27, reason="large_order_bonus"), sequence=2),
        envelope(ShipmentCancelled(shipment_id=1, order_id=order_id), sequence=3),
        envelope(PointsReversed(order_id=order_id, customer_id=1, points=27, balance=0), sequence=3),
    ]


def fulfilment(order: Order) -> tuple:
    order.refresh_from_db()
    return order.shipment_status, order.tracking_number, order.label_url, order.points_awarded, order.points_reversed


def test_every_arrival_order_of_an_orders_reports_ends_in_the_same_state(customer, product, address):
    listener = EventConsumer(SUBSCRIPTIONS["shop"])
    product.stock = 1000
    product.save()
    outcomes = set()
    for permutation in itertools.islice(itertools.permutations(range(6)), 0, 720, 37):
        order = order_place(customer=customer, items=[OrderItem("MUG-01", 1)],
                            shipping_address=ShippingAddress(**address)).order
        events = reports(order.pk)
        for index in permutation:
            assert listener.process(delivery(events[index]), RecordingRetryScheduler()) == "applied"
        outcomes.add(fulfilment(order))

    assert outcomes == {("cancelled", "TRK1", "/media/labels/TRK1.png", 27, 27)}
