"""The shop's REST API under /api/: one view per operation."""
from django.urls import path

from shop.apis.auth import AuthTokenObtainApi
from shop.apis.orders import OrderCancelApi, OrderCollectionApi, OrderDetailApi
from shop.apis.products import ProductListApi

app_name = "shop_api"

urlpatterns = [
    path("auth/token/", AuthTokenObtainApi.as_view(), name="auth-token"),
    path("products/", ProductListApi.as_view(), name="product-list"),
    # GET lists (OrderListApi), POST places (OrderPlaceApi).
    path("orders/", OrderCollectionApi.as_view(), name="order-list"),
    path("orders/<int:order_id>/", OrderDetailApi.as_view(), name="order-detail"),
    path("orders/<int:order_id>/cancel/", OrderCancelApi.as_view(), name="order-cancel"),
]
