"""Loyalty's services alone, without the consumer's inbox and sequence check in front of them: each
order is credited, given its bonus and reversed at most once (the unique (order, kind) business key).
Every call below carries a new event id, so only the business key can tell a repeat."""
import pytest
from django.db import IntegrityError, transaction

from loyalty.models import LoyaltyAccount, PointsTransaction
from loyalty.services import LOYALTY_DATABASE, points_award, points_bonus_award, points_reverse
from messaging.events import PointsAwarded, PointsReversed
from messaging.models import OutboxMessage
from tests.messaging.builders import cancellation, envelope, purchase

pytestmark = pytest.mark.django_db(databases=["default", "loyalty"])

CUSTOMER = 8
TOTAL = "123.45"  # 123 points, and a large-order bonus of 12


def award(order_id: int):
    with transaction.atomic(using=LOYALTY_DATABASE):
        return points_award(envelope=envelope(purchase(order_id, customer_id=CUSTOMER, total=TOTAL)))


def bonus(order_id: int):
    with transaction.atomic(using=LOYALTY_DATABASE):
        return points_bonus_award(envelope=envelope(purchase(order_id, customer_id=CUSTOMER, total=TOTAL)))


def reverse(order_id: int):
    with transaction.atomic(using=LOYALTY_DATABASE):
        return points_reverse(envelope=envelope(cancellation(order_id, customer_id=CUSTOMER, total=TOTAL)))


def ledger(order_id: int) -> list[tuple[str, int]]:
    return sorted(PointsTransaction.objects.filter(order_id=order_id).values_list("kind", "points"))


def balance() -> int:
    return LoyaltyAccount.objects.get(customer_id=CUSTOMER).balance


def outbox_events(event_type: str) -> int:
    return OutboxMessage.objects.using(LOYALTY_DATABASE).filter(event_type=event_type).count()


def test_the_database_refuses_a_second_entry_of_one_kind_for_the_same_order():
    account = LoyaltyAccount.objects.create(customer_id=CUSTOMER)
    entry = dict(account=account, order_id=60, kind=PointsTransaction.Kind.AWARD, points=1)
    PointsTransaction.objects.create(event_id="00000000-0000-0000-0000-000000000001", **entry)

    with pytest.raises(IntegrityError), transaction.atomic(using=LOYALTY_DATABASE):
        PointsTransaction.objects.create(event_id="00000000-0000-0000-0000-000000000002", **entry)


def test_crediting_a_purchase_twice_records_one_award_and_credits_the_balance_once():
    assert award(61) is not None
    assert award(61) is None

    assert ledger(61) == [("award", 123)]
    assert balance() == 123
    assert outbox_events(PointsAwarded.type) == 1


def test_the_large_order_bonus_twice_records_one_bonus_and_credits_the_balance_once():
    assert bonus(62) is not None
    assert bonus(62) is None

    assert ledger(62) == [("bonus", 12)]
    assert balance() == 12
    assert outbox_events(PointsAwarded.type) == 1


def test_reversing_an_order_twice_takes_its_points_back_once():
    award(63)
    bonus(63)

    assert reverse(63) is not None
    assert reverse(63) is None

    assert ledger(63) == [("award", 123), ("bonus", 12), ("reversal", -135)]
    assert balance() == 0
    assert outbox_events(PointsReversed.type) == 1


def test_a_purchase_and_its_bonus_after_the_reversal_credit_nothing():
    reverse(64)

    assert award(64) is None
    assert bonus(64) is None

    assert ledger(64) == [("reversal", 0)]
    assert balance() == 0
    assert outbox_events(PointsAwarded.type) == 0
