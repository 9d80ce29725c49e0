"""The Celery application: work queues spread across competing workers."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("eventshop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
