"""The dead-letter API under /api/messaging/ (staff only)."""
from django.urls import path

from messaging.apis import (
    DeadLetterBulkDiscardApi,
    DeadLetterBulkReplayApi,
    DeadLetterDetailApi,
    DeadLetterDiscardApi,
    DeadLetterListApi,
    DeadLetterReplayApi,
)

app_name = "messaging_api"

urlpatterns = [
    path("dead-letters/", DeadLetterListApi.as_view(), name="dead-letter-list"),
    path("dead-letters/<str:consumer>/replay/", DeadLetterBulkReplayApi.as_view(), name="dead-letter-replay-many"),
    path("dead-letters/<str:consumer>/discard/", DeadLetterBulkDiscardApi.as_view(), name="dead-letter-discard-many"),
    path("dead-letters/<str:consumer>/<int:dead_letter_id>/", DeadLetterDetailApi.as_view(), name="dead-letter-detail"),
    path("dead-letters/<str:consumer>/<int:dead_letter_id>/replay/", DeadLetterReplayApi.as_view(), name="dead-letter-replay"),
    path("dead-letters/<str:consumer>/<int:dead_letter_id>/discard/", DeadLetterDiscardApi.as_view(),
         name="dead-letter-discard"),
]
