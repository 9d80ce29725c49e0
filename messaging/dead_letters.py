"""Dead letters: messages a consumer gave up on, kept untouched with the reason, and put back on request.

A replayed message goes back onto its consumer's queue byte for byte, with the same event id, so
the inbox still deduplicates it: replaying a message that was in fact applied changes nothing.
"""
from __future__ import annotations

import uuid

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from messaging.brokers import BrokerError, EventBus, OutgoingMessage
from messaging.events import Envelope
from messaging.models import DeadLetter, DeliveryAttempt, DeliveryOutcome
from messaging.retries import ATTEMPT_HEADER
from messaging.topology import SUBSCRIPTIONS, event_bus_connect

REPLAY_HEADER = "x-eventshop-replayed-from"
# An operator, or an HTTP request, is waiting: say the broker is down within seconds.
BROKER_CHECK_TIMEOUT_SECONDS = 2.0


class BrokerUnavailable(Exception):
    """The broker could not be reached, or failed midway; `replayed` dead letters went out before it did."""

    def __init__(self, message: str, *, replayed: int = 0):
        super().__init__(message)
        self.replayed = replayed


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
    worker: str = "",
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
            worker=worker,
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


def dead_letters_replay(*, consumer: str, dead_letters: list[DeadLetter], bus: EventBus | None = None) -> int:
    """Put pending dead letters back on the consumer's queue, unchanged, and mark the confirmed ones
    replayed. Raises BrokerUnavailable, saying how many went out, when the broker fails midway."""
    subscription = SUBSCRIPTIONS[consumer]
    pending = [letter for letter in dead_letters if letter.status == DeadLetter.Status.PENDING]
    if not pending:
        return 0
    own_bus = bus is None
    bus = bus or event_bus_connect()
    try:
        result = bus.send_to_queue(subscription.queue_name, [_replayed(letter) for letter in pending])
    finally:
        if own_bus:
            bus.close()
    confirmed = set(result.confirmed)
    replayed = [letter.pk for letter in pending if _replay_id(letter) in confirmed]
    DeadLetter.objects.using(subscription.database).filter(pk__in=replayed).update(
        status=DeadLetter.Status.REPLAYED, resolved_at=timezone.now()
    )
    if result.error is not None:
        raise BrokerUnavailable(f"the broker failed after {len(replayed)} of {len(pending)} were replayed: "
                                f"{result.error}", replayed=len(replayed))
    return len(replayed)


def _replay_id(letter: DeadLetter) -> str:
    # Unique per dead letter (two letters may share an event id), so each is marked on its own confirm.
    return f"{letter.event_id or 'no-event-id'}:replay:{letter.pk}"


def _replayed(letter: DeadLetter) -> OutgoingMessage:
    headers = {key: value for key, value in letter.headers.items() if key != ATTEMPT_HEADER}
    headers[REPLAY_HEADER] = letter.pk
    return OutgoingMessage(
        message_id=_replay_id(letter),
        routing_key=letter.routing_key,
        body=bytes(letter.body),
        content_type=letter.content_type or "application/octet-stream",
        headers=headers,
        ordering_key=letter.subject,
    )


def dead_letters_discard(*, consumer: str, dead_letters: list[DeadLetter]) -> int:
    database = SUBSCRIPTIONS[consumer].database
    return DeadLetter.objects.using(database).filter(
        pk__in=[letter.pk for letter in dead_letters], status=DeadLetter.Status.PENDING
    ).update(status=DeadLetter.Status.DISCARDED, resolved_at=timezone.now())


def dead_letters_get_many(*, consumer: str, ids: list[int]) -> list[DeadLetter]:
    """The dead letters with these ids, whatever their status; DoesNotExist names every id not found."""
    letters = list(dead_letter_list(consumer=consumer, status=None).filter(pk__in=ids).order_by("id"))
    missing = sorted(set(ids) - {letter.pk for letter in letters})
    if missing:
        raise DeadLetter.DoesNotExist(f"no dead letter {', '.join(map(str, missing))} for {consumer}")
    return letters


def dead_letters_replay_if_broker_reachable(*, consumer: str, dead_letters: list[DeadLetter],
                                           connect_timeout: float = BROKER_CHECK_TIMEOUT_SECONDS) -> int:
    """`dead_letters_replay` for an operator who is waiting: raises BrokerUnavailable at once, with
    nothing published or marked, when the broker cannot be reached, and says how many went out when
    it fails midway."""
    if not any(letter.status == DeadLetter.Status.PENDING for letter in dead_letters):
        return 0
    try:
        bus = event_bus_connect(connect_timeout=connect_timeout)
    except BrokerError as error:
        raise BrokerUnavailable(f"{error}; nothing was replayed") from error
    with bus:
        return dead_letters_replay(consumer=consumer, dead_letters=dead_letters, bus=bus)


def _event_id_from(headers: dict) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(headers.get("message_id") or headers.get("ce-id")))
    except ValueError:
        return None


def _jsonable_headers(headers: dict) -> dict:
    return {str(key): value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)
            for key, value in headers.items()}
