"""Production: PostgreSQL and RabbitMQ from the environment, no debug, secrets required."""
import os

from .base import *  # noqa: F401,F403
from .env import env_bool

DEBUG = False
SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
INTERNAL_API_TOKEN = os.environ.get("INTERNAL_API_TOKEN", SECRET_KEY)
CALLBACK_SIGNING_SECRET = os.environ.get("CALLBACK_SIGNING_SECRET", SECRET_KEY)
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
