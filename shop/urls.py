"""The shop's HTML pages."""
from django.contrib.auth import views as auth_views
from django.urls import path

from shop import views

app_name = "shop"
urlpatterns = [
    path("", views.catalog, name="catalog"),
    path("products/<str:sku>/", views.product_detail, name="product"),
    path("cart/", views.cart_detail, name="cart"),
    path("cart/add/<str:sku>/", views.cart_add, name="cart_add"),
    path("cart/update/", views.cart_update, name="cart_update"),
    path("checkout/", views.checkout, name="checkout"),
    path("ops/checkout-mode/", views.checkout_mode_switch, name="checkout_mode"),
    path("orders/", views.order_list, name="orders"),
    path("orders/<int:pk>/", views.order_detail, name="order"),
    path("orders/<int:pk>/journey/", views.order_journey_partial, name="order_journey"),
    path("orders/<int:pk>/cancel/", views.order_cancel_view, name="order_cancel"),
    path(
        "login/",
        auth_views.LoginView.as_view(template_name="shop/login.html", redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
