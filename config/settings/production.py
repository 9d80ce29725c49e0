"""Production: PostgreSQL and RabbitMQ from the environment, no debug, HTTPS only, secrets required.

With these defaults `manage.py check --deploy` reports nothing. docker-compose.yml serves plain HTTP
on localhost, so it turns the HTTPS settings off explicitly.
"""
from .base import *  # noqa: F401,F403
from .env import env_bool, env_int, env_required, secrets_refuse_weak

DEBUG = False

# Each secret is its own variable, with no fallback: one leaked value must not open the others.
SECRET_KEY = env_required("DJANGO_SECRET_KEY")
INTERNAL_API_TOKEN = env_required("INTERNAL_API_TOKEN")
CALLBACK_SIGNING_SECRET = env_required("CALLBACK_SIGNING_SECRET")
secrets_refuse_weak({"DJANGO_SECRET_KEY": SECRET_KEY, "INTERNAL_API_TOKEN": INTERNAL_API_TOKEN,
                     "CALLBACK_SIGNING_SECRET": CALLBACK_SIGNING_SECRET})

# HTTPS: redirect plain HTTP, and tell browsers (HSTS) to use nothing else for a year.
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", True)
# Behind a proxy that terminates TLS and sets X-Forwarded-Proto (and strips the client's own), say
# so; without it every request looks like plain HTTP and the redirect never ends.
if env_bool("DJANGO_SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
