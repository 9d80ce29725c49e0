"""Loyalty's REST API under /api/loyalty/."""
from django.urls import path

from loyalty.apis import LoyaltyAccountDetailApi, PointsTransactionListApi

app_name = "loyalty_api"

urlpatterns = [
    path("transactions/", PointsTransactionListApi.as_view(), name="transaction-list"),
    path("accounts/<int:customer_id>/", LoyaltyAccountDetailApi.as_view(), name="account-detail"),
]
