"""Every read shipping makes beyond a plain get."""
from django.db.models import QuerySet

from shipping.models import Shipment


def shipment_list(*, order_id: int | None = None) -> QuerySet[Shipment]:
    shipments = Shipment.objects.all()
    return shipments.filter(order_id=order_id) if order_id is not None else shipments
