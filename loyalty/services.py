"""Every write loyalty makes; each records its event in the same transaction."""
import math
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import F, Sum

from messaging.events import Envelope, OrderCancelled, PointsAwarded, PointsReversed, PurchaseConfirmed
from messaging.outbox import outbox_event_record
from loyalty.models import LoyaltyAccount, PointsTransaction

LOYALTY_DATABASE = "loyalty"
LARGE_ORDER_BONUS_RATE = Decimal("0.10")


def points_for_total(total) -> int:
    return math.floor(total)


def bonus_points_for_total(total) -> int:
    return math.floor(total * LARGE_ORDER_BONUS_RATE)


def account_for_update(*, customer_id: int, email: str = "") -> LoyaltyAccount:
    # Insert-or-ignore, then lock: two first purchases of one customer cannot create two accounts.
    LoyaltyAccount.objects.bulk_create([LoyaltyAccount(customer_id=customer_id, email=email)], ignore_conflicts=True)
    return LoyaltyAccount.objects.select_for_update().get(customer_id=customer_id)


def points_award(*, envelope: Envelope) -> PointsTransaction | None:
    """Credit floor(total) points for a purchase; None if this order was already credited."""
    purchase: PurchaseConfirmed = envelope.event
    return _points_credit(envelope=envelope, kind=PointsTransaction.Kind.AWARD, points=points_for_total(purchase.total))


def points_bonus_award(*, envelope: Envelope) -> PointsTransaction | None:
    """Credit the large-order bonus (its own subscription, by routing key). None if already credited,
    or if the order's points were reversed first: a cancelled order earns no bonus."""
    purchase: PurchaseConfirmed = envelope.event
    return _points_credit(envelope=envelope, kind=PointsTransaction.Kind.BONUS,
                          points=bonus_points_for_total(purchase.total))


def _points_credit(*, envelope: Envelope, kind: str, points: int) -> PointsTransaction | None:
    purchase: PurchaseConfirmed = envelope.event
    # The account row lock also serialises this order's credits against its reversal.
    account = account_for_update(customer_id=purchase.customer_id, email=purchase.customer_email)
    if PointsTransaction.objects.filter(order_id=purchase.order_id, kind=PointsTransaction.Kind.REVERSAL).exists():
        return None
    entry = _ledger_entry_create(account=account, order_id=purchase.order_id, kind=kind, points=points, envelope=envelope)
    if entry is None:
        return None
    LoyaltyAccount.objects.filter(pk=account.pk).update(balance=F("balance") + points)
    account.refresh_from_db(fields=["balance"])
    outbox_event_record(
        PointsAwarded(order_id=purchase.order_id, customer_id=purchase.customer_id, points=points,
                      balance=account.balance, reason="large_order_bonus" if kind == PointsTransaction.Kind.BONUS else "purchase"),
        using=LOYALTY_DATABASE,
    )
    return entry


def points_reverse(*, envelope: Envelope) -> PointsTransaction | None:
    """Take back everything the order earned (award and bonus) in one reversal entry.

    If nothing was credited yet, a zero reversal still records that the order is cancelled, so a
    bonus or purchase arriving later credits nothing (docs/guarantees.md#out-of-order-events).
    """
    cancellation: OrderCancelled = envelope.event
    account = account_for_update(customer_id=cancellation.customer_id)
    earned = PointsTransaction.objects.filter(
        order_id=cancellation.order_id, kind__in=[PointsTransaction.Kind.AWARD, PointsTransaction.Kind.BONUS]
    ).aggregate(total=Sum("points"))["total"] or 0
    entry = _ledger_entry_create(account=account, order_id=cancellation.order_id, kind=PointsTransaction.Kind.REVERSAL,
                                 points=-earned, envelope=envelope)
    if entry is None or earned == 0:
        return entry
    LoyaltyAccount.objects.filter(pk=account.pk).update(balance=F("balance") - earned)
    account.refresh_from_db(fields=["balance"])
    outbox_event_record(
        PointsReversed(order_id=cancellation.order_id, customer_id=cancellation.customer_id, points=earned,
                       balance=account.balance),
        using=LOYALTY_DATABASE,
    )
    return entry


def _ledger_entry_create(*, account, order_id, kind, points, envelope) -> PointsTransaction | None:
    try:
        with transaction.atomic(using=LOYALTY_DATABASE):
            return PointsTransaction.objects.create(account=account, order_id=order_id, kind=kind, points=points,
                                                    event_id=envelope.id)
    except IntegrityError:
        return None
