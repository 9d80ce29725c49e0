"""The Celery application: work queues spread across competing workers."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
# The `celery` command's --broker option reads the environment's BROKER_URL and copies it into
# CELERY_BROKER_URL. Ours is the event broker (ActiveMQ or SQS, which Celery cannot use as we
# address them); the work queues have their own setting (config/settings/celery.py): undo the copy.
if os.environ.get("CELERY_BROKER_URL") and os.environ.get("CELERY_BROKER_URL") == os.environ.get("BROKER_URL"):
    del os.environ["CELERY_BROKER_URL"]

app = Celery("eventshop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
