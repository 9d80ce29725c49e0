"""The operations view (staff only): the whole flow live, the controls to disturb it, one order's journey.

`/ops/` renders everything once on the server; `ops.js` then polls `/ops/state.json` (the same
numbers, built by `operations_state`) every 2 s and updates the page in place. Every control is a
small POST form that calls one function in messaging/operations.py (or shop/scenarios.py) and
redirects back with a message saying what happened.

The parts: `brokers` (/ops/brokers/: the brokers compared), `pages` (the overview, state.json, one order's journey), `controls` (the POST forms),
`state` and `journey` (what they show, read fresh), `access` (staff only). Import from here.
"""
from messaging.ops_views.access import staff_required
from messaging.ops_views.brokers import brokers_page, brokers_progress, brokers_run
from messaging.ops_views.controls import (
    consumer_faults,
    consumer_pause_view,
    consumer_resume_view,
    poison_inject,
    scenario_loyalty_outage,
    scenario_poison_message,
    scenario_traffic_spike,
)
from messaging.ops_views.pages import journey_search, order_journey, overview, state_json
from messaging.ops_views.state import faults_text, operations_state

__all__ = [
    "brokers_page",
    "brokers_progress",
    "brokers_run",
    "consumer_faults",
    "consumer_pause_view",
    "consumer_resume_view",
    "faults_text",
    "journey_search",
    "operations_state",
    "order_journey",
    "overview",
    "poison_inject",
    "scenario_loyalty_outage",
    "scenario_poison_message",
    "scenario_traffic_spike",
    "staff_required",
    "state_json",
]
