"""Docs: docs/architecture.md#loyalty. Loyalty's subscriptions: event type -> handler."""
from loyalty.services import points_award, points_bonus_award, points_reverse
from messaging.events import Envelope, OrderCancelled, PurchaseConfirmed


def points_award_for_purchase(envelope: Envelope) -> None:
    points_award(envelope=envelope)


def points_reverse_for_cancellation(envelope: Envelope) -> None:
    points_reverse(envelope=envelope)


def points_bonus_award_for_large_purchase(envelope: Envelope) -> None:
    points_bonus_award(envelope=envelope)


HANDLERS = {
    PurchaseConfirmed.type: points_award_for_purchase,
    OrderCancelled.type: points_reverse_for_cancellation,
}

# The loyalty-bonus subscription is bound by routing key to large purchases only (messaging/topology.py).
LARGE_ORDER_HANDLERS = {
    PurchaseConfirmed.type: points_bonus_award_for_large_purchase,
}
