from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Messaging"

    def ready(self) -> None:
        # Connects the Celery signal receivers that carry the correlation id through work queues.
        from messaging import correlation  # noqa: F401
