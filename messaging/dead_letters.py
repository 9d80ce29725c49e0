"""Dead letters: messages a consumer gave up on, kept untouched with the reason, and put back on request.

A replayed message goes back onto its consumer's queue byte for byte, with the same event id, so
the inbox still deduplicates it: replaying a message that was in fact applied changes nothing.
"""
from __future__ import annotations

import uuid

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from kombu import Exchange, Producer

from messaging.broker import broker_connection
from messaging.events import Envelope
from messaging.models import DeadLetter, DeliveryAttempt, DeliveryOutcome
from messaging.retries import ATTEMPT_HEADER, BROKER_HEADERS
from messaging.topology import SUBSCRIPTIONS, topology_declare

REPLAY_HEADER = "x-eventshop-replayed-from"


def dead_letter_record(
    *,
    consumer: str,
    database: str,
    body: bytes,
    content_type: str,
    routing_key: str,
    headers: dict,
    reason: str,
    detail: str,
    attempts: int,
    envelope: Envelope | None,
) -> DeadLetter:
    """Keep a message the consumer gave up on, and record the attempt, in one transaction."""
    with transaction.atomic(using=database):
        dead_letter = DeadLetter.objects.using(database).create(
            consumer=consumer,
            event_id=envelope.id if envelope else _event_id_from(headers),
            event_type=envelope.type if envelope else str(headers.get("ce-type", ""))[:100],
            subject=envelope.subject if envelope else "",
            reason=reason,
            detail=detail,
            attempts=attempts,
            body=body,
            content_type=content_type,
            routing_key=routing_key,
            headers=_jsonable_headers(headers),
        )
        DeliveryAttempt.objects.using(database).create(
            consumer=consumer,
            event_id=dead_letter.event_id,
            event_type=dead_letter.event_type,
            subject=dead_letter.subject,
            sequence=envelope.sequence if envelope else None,
            attempt=attempts,
            outcome=DeliveryOutcome.DEAD_LETTERED,
            reason=reason,
            detail=detail[:2000],
            correlation_id=envelope.correlation_id if envelope else "",
        )
    return dead_letter


def dead_letter_list(*, consumer: str, status: str | None = DeadLetter.Status.PENDING, reason: str | None = None,
                     event_type: str | None = None) -> QuerySet[DeadLetter]:
    database = SUBSCRIPTIONS[consumer].database
    letters = DeadLetter.objects.using(database).filter(consumer=consumer).order_by("-created_at", "-id")
    if status:
        letters = letters.filter(status=status)
    if reason:
        letters = letters.filter(reason=reason)
    if event_type:
        letters = letters.filter(event_type=event_type)
    return letters


def dead_letter_get(*, consumer: str, dead_letter_id: int) -> DeadLetter:
    return DeadLetter.objects.using(SUBSCRIPTIONS[consumer].database).get(consumer=consumer, pk=dead_letter_id)


def dead_letters_replay(*, consumer: str, dead_letters: list[DeadLetter]) -> int:
    """Put pending dead letters back on the consumer's queue, unchanged, and mark them replayed."""
    subscription = SUBSCRIPTIONS[consumer]
    pending = [letter for letter in dead_letters if letter.status == DeadLetter.Status.PENDING]
    if not pending:
        return 0
    with broker_connection() as connection:
        topology_declare(connection)
        producer = Producer(connection.default_channel)
        for letter in pending:
            headers = {key: value for key, value in letter.headers.items() if key not in BROKER_HEADERS and key != ATTEMPT_HEADER}
            headers[REPLAY_HEADER] = letter.pk
            producer.publish(
                bytes(letter.body),
                exchange=Exchange(""),
                routing_key=subscription.queue_name,
                content_type=letter.content_type or "application/octet-stream",
                content_encoding="utf-8" if letter.content_type else "binary",
                delivery_mode=2,
                headers=headers,
                retry=False,
            )
            # Marked one by one after each confirmed publish: a crash midway replays none twice.
            DeadLetter.objects.using(subscription.database).filter(pk=letter.pk).update(
                status=DeadLetter.Status.REPLAYED, resolved_at=timezone.now()
            )
    return len(pending)


def dead_letters_discard(*, consumer: str, dead_letters: list[DeadLetter]) -> int:
    database = SUBSCRIPTIONS[consumer].database
    return DeadLetter.objects.using(database).filter(
        pk__in=[letter.pk for letter in dead_letters], status=DeadLetter.Status.PENDING
    ).update(status=DeadLetter.Status.DISCARDED, resolved_at=timezone.now())


def _event_id_from(headers: dict) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(headers.get("message_id") or headers.get("ce-id")))
    except ValueError:
        return None


def _jsonable_headers(headers: dict) -> dict:
    return {str(key): value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)
            for key, value in headers.items()}
