"""The Eventshop project: settings, URLs and the Celery app."""
from messaging.transport import register_transport_alias

# Kombu and Celery must know the embedded transport before any connection is made.
register_transport_alias()

from .celery import app as celery_app  # noqa: E402

__all__ = ["celery_app"]
