"""Shipping's REST API under /api/shipping/."""
from django.urls import path

from shipping.apis import ShipmentListApi

app_name = "shipping_api"

urlpatterns = [
    path("shipments/", ShipmentListApi.as_view(), name="shipment-list"),
]
