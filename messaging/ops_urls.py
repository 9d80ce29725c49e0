"""The operations view under /ops/ (staff only)."""
from django.urls import path

from messaging import ops_views as views

app_name = "ops"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("state.json", views.state_json, name="state"),
    path("brokers/", views.brokers_page, name="brokers"),
    path("brokers/progress.json", views.brokers_progress, name="brokers_progress"),
    path("brokers/run/", views.brokers_run, name="brokers_run"),
    path("orders/", views.journey_search, name="journey_search"),
    path("orders/<int:order_id>/journey/", views.order_journey, name="order_journey"),
    path("consumers/<str:consumer>/faults/", views.consumer_faults, name="consumer_faults"),
    path("consumers/<str:consumer>/pause/", views.consumer_pause_view, name="consumer_pause"),
    path("consumers/<str:consumer>/resume/", views.consumer_resume_view, name="consumer_resume"),
    path("poison/", views.poison_inject, name="poison_inject"),
    path("scenarios/traffic-spike/", views.scenario_traffic_spike, name="scenario_traffic_spike"),
    path("scenarios/loyalty-outage/", views.scenario_loyalty_outage, name="scenario_loyalty_outage"),
    path("scenarios/poison-message/", views.scenario_poison_message, name="scenario_poison_message"),
]
