"""Every read loyalty makes beyond a plain get."""
from django.db.models import QuerySet

from loyalty.models import LoyaltyAccount, PointsTransaction


def points_transaction_list(*, order_id: int | None = None) -> QuerySet[PointsTransaction]:
    entries = PointsTransaction.objects.select_related("account")
    return entries.filter(order_id=order_id) if order_id is not None else entries


def account_get(*, customer_id: int) -> LoyaltyAccount | None:
    return LoyaltyAccount.objects.filter(customer_id=customer_id).first()
