"""Shipping's staff dashboard under /dashboards/shipping/."""
from django.urls import path

from shipping import views

app_name = "shipping"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
]
