"""The consumer panel that the shipping and loyalty dashboards embed (staff only), and its controls.

The panel is one partial (`messaging/consumer/panel.html`); `dashboard.js` fetches it again every
2 s from `consumer_panel`. Every control is a plain POST form that redirects back to the page it
was on (`next`), so the forms keep working however often the panel is swapped.

The parts: `panel` (what the panel shows, and the pages that show it), `dead_letters` (one dead
letter's page), `controls` (the POST forms), `common` (staff only, lookups, the way back). Import from here.
"""
from messaging.consumer_views.common import staff_required
from messaging.consumer_views.controls import (
    consumer_pause_view,
    consumer_resume_view,
    dead_letter_discard,
    dead_letter_replay,
    dead_letters_discard_all,
    dead_letters_replay_all,
)
from messaging.consumer_views.dead_letters import dead_letter_detail
from messaging.consumer_views.panel import consumer_detail, consumer_panel, consumer_panel_context

__all__ = [
    "consumer_detail",
    "consumer_panel",
    "consumer_panel_context",
    "consumer_pause_view",
    "consumer_resume_view",
    "dead_letter_detail",
    "dead_letter_discard",
    "dead_letter_replay",
    "dead_letters_discard_all",
    "dead_letters_replay_all",
    "staff_required",
]
