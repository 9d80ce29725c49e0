"""What staff do from the operations view: stop and start consumers, inject faults, publish poison.

Pauses and faults are rows (`ConsumerState`), not signals: a running consumer reads its row at each
heartbeat (~5 s), so it obeys within one. Poison messages go straight to the broker, deliberately
bypassing the outbox: they are the malformed messages a buggy or hostile publisher could send.
"""
from __future__ import annotations

import dataclasses
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from messaging.brokers import BrokerError, OutgoingMessage
from messaging.dead_letters import BROKER_CHECK_TIMEOUT_SECONDS, BrokerUnavailable
from messaging.events import CONTENT_TYPE, SPECVERSION
from messaging.faults import FaultPlan
from messaging.models import ConsumerState
from messaging.topology import SUBSCRIPTIONS, event_bus_connect

# Bound by shipping and loyalty (`shop.purchase.confirmed.#`); ZZ is no real country.
POISON_ROUTING_KEY = "shop.purchase.confirmed.ZZ.standard"
POISON_KINDS = {
    "not_json": "a body that is not JSON",
    "unknown_type": "a well-formed CloudEvent of a type nobody knows",
}


def consumer_pause(*, consumer: str, until: datetime | None = None) -> ConsumerState:
    """Stop a consumer: until resumed, or until `until` (it then resumes by itself)."""
    return _consumer_state_update(consumer, paused=until is None, paused_until=until)


def consumer_resume(*, consumer: str) -> ConsumerState:
    """Start a consumer again, ending an open-ended pause and a timed one alike."""
    return _consumer_state_update(consumer, paused=False, paused_until=None)


def consumer_outage_start(*, consumer: str, seconds: float) -> ConsumerState:
    """A pause that ends by itself: what a service outage looks like from the queue."""
    return consumer_pause(consumer=consumer, until=timezone.now() + timedelta(seconds=seconds))


def consumer_faults_update(*, consumer: str, **changes) -> FaultPlan:
    """Change some of a consumer's injected faults (FaultPlan field names), keeping the others."""
    known = {field.name for field in dataclasses.fields(FaultPlan)}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise ValueError(f"unknown fault(s): {', '.join(unknown)}")
    database = SUBSCRIPTIONS[consumer].database
    with transaction.atomic(using=database):
        state = _consumer_state_locked(consumer)
        plan = dataclasses.replace(FaultPlan.from_dict(state.faults), **changes)
        state.faults = plan.to_dict()
        state.save(using=database, update_fields=["faults"])
    return plan


def consumer_faults_clear(*, consumer: str) -> FaultPlan:
    database = SUBSCRIPTIONS[consumer].database
    with transaction.atomic(using=database):
        state = _consumer_state_locked(consumer)
        state.faults = FaultPlan().to_dict()
        state.save(using=database, update_fields=["faults"])
    return FaultPlan()


@dataclass(frozen=True)
class PoisonMessage:
    kind: str
    message_id: str
    routing_key: str
    body: str


def poison_message_inject(*, kind: str) -> PoisonMessage:
    """Publish one malformed message to the events exchange; every consumer it reaches dead-letters it."""
    if kind not in POISON_KINDS:
        raise ValueError(f"unknown poison kind {kind!r}; choose one of {', '.join(POISON_KINDS)}")
    message_id = str(uuid.uuid4())
    body = _poison_body(kind, message_id)
    poison = OutgoingMessage(
        message_id=message_id,
        routing_key=POISON_ROUTING_KEY,
        body=body.encode(),
        # Claims to be a CloudEvent, so it gets past the content-type check and fails on its body.
        content_type=CONTENT_TYPE,
        headers={"ce-type": "poison", "x-eventshop-poison": kind},
    )
    try:
        with event_bus_connect(connect_timeout=BROKER_CHECK_TIMEOUT_SECONDS) as bus:
            result = bus.publish([poison])
    except BrokerError as error:
        raise BrokerUnavailable(f"cannot publish to the broker: {error}") from error
    if result.error is not None:
        raise BrokerUnavailable(f"cannot publish to the broker: {result.error}") from result.error
    return PoisonMessage(kind=kind, message_id=message_id, routing_key=POISON_ROUTING_KEY, body=body)


def _poison_body(kind: str, message_id: str) -> str:
    if kind == "not_json":
        return "<order id=42>this is not JSON {"
    return json.dumps({
        "specversion": SPECVERSION,
        "id": message_id,
        "source": "/shop",
        "type": "shop.purchase.teleported",
        "time": timezone.now().isoformat().replace("+00:00", "Z"),
        "subject": "0",
        "sequence": "1",
        "datacontenttype": "application/json",
        "correlationid": f"poison-{message_id[:8]}",
        "data": {"order_id": 0},
    })


def _consumer_state_update(consumer: str, **values) -> ConsumerState:
    database = SUBSCRIPTIONS[consumer].database
    with transaction.atomic(using=database):
        state = _consumer_state_locked(consumer)
        for name, value in values.items():
            setattr(state, name, value)
        state.save(using=database, update_fields=list(values))
    return state


def _consumer_state_locked(consumer: str) -> ConsumerState:
    database = SUBSCRIPTIONS[consumer].database
    ConsumerState.objects.using(database).get_or_create(consumer=consumer)
    return ConsumerState.objects.using(database).select_for_update().get(consumer=consumer)
