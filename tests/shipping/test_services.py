"""Shipping's services alone, without the consumer's inbox and sequence check in front of them:
one shipment per order holds by itself (the unique order id and what the service does when it hits it)."""
import pytest
from celery.signals import before_task_publish
from django.db import IntegrityError, transaction

from messaging.events import ShipmentCancelled, ShipmentCreated
from messaging.models import OutboxMessage
from shipping.models import Shipment
from shipping.services import SHIPPING_DATABASE, shipment_cancel, shipment_create
from tests.messaging.builders import purchase

pytestmark = pytest.mark.django_db(databases=["default", "shipping"])


@pytest.fixture
def label_jobs():
    """The label jobs sent to the work queue, as (task name, args), recorded at Celery's publish."""
    sent = []

    def record(sender=None, body=None, **kwargs):
        sent.append((sender, tuple(body[0])))

    before_task_publish.connect(record, weak=False)
    yield sent
    before_task_publish.disconnect(record)


def outbox_events(event_type: str, order_id: int) -> list[OutboxMessage]:
    return list(OutboxMessage.objects.using(SHIPPING_DATABASE).filter(event_type=event_type, subject=str(order_id)))


def create(order_id: int):
    # As the consumer calls it: inside the shipping database's transaction.
    with transaction.atomic(using=SHIPPING_DATABASE):
        return shipment_create(purchase=purchase(order_id=order_id))


def cancel(order_id: int):
    with transaction.atomic(using=SHIPPING_DATABASE):
        return shipment_cancel(order_id=order_id)


def test_the_database_refuses_a_second_shipment_for_the_same_order():
    Shipment.objects.create(order_id=50, tracking_number="TRK-A")

    with pytest.raises(IntegrityError), transaction.atomic(using=SHIPPING_DATABASE):
        Shipment.objects.create(order_id=50, tracking_number="TRK-B")

    assert Shipment.objects.filter(order_id=50).count() == 1


def test_creating_the_shipment_twice_for_one_order_makes_one_shipment_one_event_and_one_label_job(label_jobs):
    first = create(51)
    second = create(51)

    assert first is not None and second is None
    assert Shipment.objects.filter(order_id=51).count() == 1
    assert len(outbox_events(ShipmentCreated.type, 51)) == 1
    assert label_jobs == [("shipping.tasks.render_shipping_label", (51,))]


def test_a_purchase_after_its_cancellation_creates_no_shipment_no_event_and_no_label_job(label_jobs):
    cancel(52)

    assert create(52) is None

    shipment = Shipment.objects.get(order_id=52)
    assert shipment.status == Shipment.Status.CANCELLED and shipment.cancelled_before_purchase
    assert outbox_events(ShipmentCreated.type, 52) == []
    assert label_jobs == []


def test_cancelling_a_shipment_twice_records_one_cancellation_event():
    shipment = create(53)

    cancel(53)
    again = cancel(53)

    assert again.pk == shipment.pk and again.status == Shipment.Status.CANCELLED
    assert Shipment.objects.filter(order_id=53).count() == 1
    assert len(outbox_events(ShipmentCancelled.type, 53)) == 1


def test_cancelling_twice_before_the_purchase_leaves_one_cancelled_shipment_and_no_event():
    cancel(54)
    cancel(54)

    assert list(Shipment.objects.filter(order_id=54).values_list("status", flat=True)) == ["cancelled"]
    assert outbox_events(ShipmentCancelled.type, 54) == []
