"""Every read loyalty makes beyond a plain get."""
from django.db.models import Count, QuerySet, Sum

from loyalty.models import LoyaltyAccount, PointsTransaction


def points_transaction_list(*, order_id: int | None = None) -> QuerySet[PointsTransaction]:
    entries = PointsTransaction.objects.select_related("account")
    return entries.filter(order_id=order_id) if order_id is not None else entries


def account_get(*, customer_id: int) -> LoyaltyAccount | None:
    return LoyaltyAccount.objects.filter(customer_id=customer_id).first()


def account_list() -> QuerySet[LoyaltyAccount]:
    return LoyaltyAccount.objects.order_by("-created_at", "-id")


def account_totals() -> dict:
    return LoyaltyAccount.objects.aggregate(accounts=Count("id"), points=Sum("balance", default=0))
