"""Every read shipping makes beyond a plain get."""
from django.db.models import Count, QuerySet

from shipping.models import Shipment


def shipment_list(*, order_id: int | None = None) -> QuerySet[Shipment]:
    shipments = Shipment.objects.all()
    return shipments.filter(order_id=order_id) if order_id is not None else shipments


def shipment_status_counts() -> list[tuple[str, int]]:
    counts = dict(Shipment.objects.values_list("status").annotate(n=Count("id")).order_by())
    return [(label, counts.get(status, 0)) for status, label in Shipment.Status.choices]


def labels_per_worker() -> list[dict]:
    """The label work queue's competing workers, and how the jobs spread over them."""
    return list(Shipment.objects.exclude(label_rendered_by="").values("label_rendered_by")
                .annotate(labels=Count("id")).order_by("-labels", "label_rendered_by"))
