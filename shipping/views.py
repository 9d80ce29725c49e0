"""Shipping's staff dashboard: the shipments it holds, who rendered their labels, and its consumer."""
from django.core.paginator import Paginator
from django.shortcuts import render
from django.views.decorators.http import require_GET

from messaging.consumer_views import consumer_panel_context, staff_required
from shipping.selectors import labels_per_worker, shipment_list, shipment_status_counts

SHIPMENTS_PER_PAGE = 50


@require_GET
@staff_required
def dashboard(request):
    shipments = shipment_list()
    return render(request, "shipping/dashboard.html", {
        "shipments": Paginator(shipments, SHIPMENTS_PER_PAGE).get_page(request.GET.get("page")),
        "status_counts": shipment_status_counts(),
        "labels_per_worker": labels_per_worker(),
        "panel": consumer_panel_context(request, consumer="shipping", next_url=request.get_full_path()),
    })

