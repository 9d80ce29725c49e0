"""One order's journey, read fresh: its events from every outbox and every delivery attempt, oldest first."""
from __future__ import annotations

from django.conf import settings

from messaging.models import OutboxMessage
from messaging.ops_views.state import _duration_text
from messaging.selectors import delivery_journey


def _journey_rows(order_id: int) -> list[dict]:
    rows = []
    for alias in settings.DATABASES:
        for message in OutboxMessage.objects.using(alias).filter(subject=str(order_id)):
            published = (f"published after {_duration_text((message.published_at - message.created_at).total_seconds())}"
                         if message.published_at else "waiting to be published")
            rows.append({
                "at": message.created_at, "kind": "event", "where": f"{message.source.strip('/')} outbox",
                "event_type": message.event_type, "sequence": message.sequence, "attempt": message.publish_attempts,
                "outcome": "published" if message.published_at else "unpublished", "reason": published,
                "detail": message.last_error, "worker": "", "duration_ms": None,
                "correlation_id": message.correlation_id, "event_id": str(message.event_id),
            })
    for attempt in delivery_journey(subject=str(order_id)):
        rows.append({
            "at": attempt.created_at, "kind": "delivery", "where": attempt.consumer,
            "event_type": attempt.event_type, "sequence": attempt.sequence, "attempt": attempt.attempt,
            "outcome": attempt.outcome, "reason": attempt.reason, "detail": attempt.detail, "worker": attempt.worker,
            "duration_ms": attempt.duration_ms, "correlation_id": attempt.correlation_id,
            "event_id": str(attempt.event_id or ""),
        })
    for row in rows:
        row["outcome_label"] = row["outcome"].replace("_", " ")
    return sorted(rows, key=lambda row: row["at"])
