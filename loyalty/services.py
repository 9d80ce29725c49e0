"""Every write loyalty makes; each records its event in the same transaction."""
import math

from django.db import IntegrityError, transaction
from django.db.models import F

from messaging.events import Envelope, OrderCancelled, PointsAwarded, PointsReversed, PurchaseConfirmed
from messaging.outbox import outbox_event_record
from loyalty.models import LoyaltyAccount, PointsTransaction

LOYALTY_DATABASE = "loyalty"


def points_for_total(total) -> int:
    return math.floor(total)


def account_for_update(*, customer_id: int, email: str = "") -> LoyaltyAccount:
    # Insert-or-ignore, then lock: two first purchases of one customer cannot create two accounts.
    LoyaltyAccount.objects.bulk_create([LoyaltyAccount(customer_id=customer_id, email=email)], ignore_conflicts=True)
    return LoyaltyAccount.objects.select_for_update().get(customer_id=customer_id)


def points_award(*, envelope: Envelope) -> PointsTransaction | None:
    """Credit floor(total) points for a purchase; None if this order was already credited."""
    purchase: PurchaseConfirmed = envelope.event
    account = account_for_update(customer_id=purchase.customer_id, email=purchase.customer_email)
    points = points_for_total(purchase.total)
    entry = _ledger_entry_create(account=account, order_id=purchase.order_id, kind=PointsTransaction.Kind.AWARD,
                                 points=points, envelope=envelope)
    if entry is None:
        return None
    LoyaltyAccount.objects.filter(pk=account.pk).update(balance=F("balance") + points)
    account.refresh_from_db(fields=["balance"])
    outbox_event_record(
        PointsAwarded(order_id=purchase.order_id, customer_id=purchase.customer_id, points=points, balance=account.balance),
        using=LOYALTY_DATABASE,
    )
    return entry


def points_reverse(*, envelope: Envelope) -> PointsTransaction | None:
    """Take back what the order earned. Nothing to take back if it earned nothing (yet): the purchase,
    if it arrives after this, is older than the cancellation and is skipped (docs/guarantees.md)."""
    cancellation: OrderCancelled = envelope.event
    account = account_for_update(customer_id=cancellation.customer_id)
    award = PointsTransaction.objects.filter(order_id=cancellation.order_id, kind=PointsTransaction.Kind.AWARD).first()
    if award is None:
        return None
    entry = _ledger_entry_create(account=account, order_id=cancellation.order_id, kind=PointsTransaction.Kind.REVERSAL,
                                 points=-award.points, envelope=envelope)
    if entry is None:
        return None
    LoyaltyAccount.objects.filter(pk=account.pk).update(balance=F("balance") - award.points)
    account.refresh_from_db(fields=["balance"])
    outbox_event_record(
        PointsReversed(order_id=cancellation.order_id, customer_id=cancellation.customer_id, points=award.points,
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
