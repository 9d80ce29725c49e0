"""The consumer panels under /dashboards/consumers/ (staff only)."""
from django.urls import path

from messaging import consumer_views as views

app_name = "consumers"

urlpatterns = [
    path("<str:consumer>/", views.consumer_detail, name="consumer"),
    path("<str:consumer>/panel/", views.consumer_panel, name="consumer_panel"),
    path("<str:consumer>/pause/", views.consumer_pause_view, name="consumer_pause"),
    path("<str:consumer>/resume/", views.consumer_resume_view, name="consumer_resume"),
    path("<str:consumer>/dead-letters/replay/", views.dead_letters_replay_all, name="dead_letters_replay_all"),
    path("<str:consumer>/dead-letters/discard/", views.dead_letters_discard_all, name="dead_letters_discard_all"),
    path("<str:consumer>/dead-letters/<int:dead_letter_id>/", views.dead_letter_detail, name="dead_letter"),
    path("<str:consumer>/dead-letters/<int:dead_letter_id>/replay/", views.dead_letter_replay, name="dead_letter_replay"),
    path("<str:consumer>/dead-letters/<int:dead_letter_id>/discard/", views.dead_letter_discard,
         name="dead_letter_discard"),
]
