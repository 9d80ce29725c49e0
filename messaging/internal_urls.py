"""Service-to-service endpoints under /internal/ (token-protected, not part of the public API)."""
from django.urls import path

from messaging.internal_apis import internal_event_apply

app_name = "messaging_internal"

urlpatterns = [
    path("events/<str:consumer>/", internal_event_apply, name="event-apply"),
]
