"""Loyalty's staff dashboard under /dashboards/loyalty/."""
from django.urls import path

from loyalty import views

app_name = "loyalty"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
]
