"""The project's URLs: the shop's pages, the APIs (with their OpenAPI schema), and the admin."""
from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/shipping/", include("shipping.api_urls")),
    path("api/loyalty/", include("loyalty.api_urls")),
    path("api/messaging/", include("messaging.api_urls")),
    path("internal/", include("messaging.internal_urls")),
    path("dashboards/shipping/", include("shipping.urls")),
    path("dashboards/loyalty/", include("loyalty.urls")),
    path("dashboards/consumers/", include("messaging.consumer_urls")),
    path("ops/", include("messaging.ops_urls")),
    path("api/", include("shop.apis.urls")),
    path("", include("shop.urls")),
    # Shipping labels, served by Django in every mode so the demo and docker compose show them.
    # A real deployment serves media from object storage or a web server in front instead.
    re_path(rf"^{settings.MEDIA_URL.strip('/')}/(?P<path>.+)$", serve, {"document_root": settings.MEDIA_ROOT}),
]
