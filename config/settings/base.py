"""Settings shared by every environment; the defaults run the embedded demo with no services."""
from .env import BASE_DIR, VAR_DIR, database_from_url, env_bool, env_int, env_str, env_throttle_rate

SECRET_KEY = env_str("DJANGO_SECRET_KEY", "dev-only-insecure-key-change-me")
DEBUG = env_bool("DJANGO_DEBUG", True)
ALLOWED_HOSTS = env_str("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver").split(",")
CSRF_TRUSTED_ORIGINS = [o for o in env_str("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI assets served locally, not from a CDN
    "messaging",
    "shop",
    "shipping",
    "loyalty",
    "operations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "shop.middleware.CorrelationIdMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "shop.context_processors.cart_summary",
                "messaging.context_processors.broker",
            ],
        },
    },
]

# Each service owns its data: the shop (and Django auth) in `default`, shipping and loyalty apart.
DATABASES = {
    "default": database_from_url(env_str("SHOP_DATABASE_URL", "sqlite:///var/shop.sqlite3")),
    "shipping": database_from_url(env_str("SHIPPING_DATABASE_URL", "sqlite:///var/shipping.sqlite3")),
    "loyalty": database_from_url(env_str("LOYALTY_DATABASE_URL", "sqlite:///var/loyalty.sqlite3")),
}
DATABASE_ROUTERS = ["config.routers.ServiceDatabaseRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "shop:login"
LOGIN_REDIRECT_URL = "shop:catalog"
LOGOUT_REDIRECT_URL = "shop:catalog"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_URL = "media/"
MEDIA_ROOT = env_str("EVENTSHOP_MEDIA_ROOT", str(VAR_DIR / "media"))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # Our JSON parser answers 400 (not 500) to JSON nested too deep to decode.
    "DEFAULT_PARSER_CLASSES": ["config.api_parsers.JSONParser", "rest_framework.parsers.FormParser",
                               "rest_framework.parsers.MultiPartParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.api_errors.api_exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    # Proxies in front whose X-Forwarded-For is trusted for the client's address (throttling). 0: none,
    # the address is the connection's; DRF's own default (None) would believe any client's header.
    "NUM_PROXIES": env_int("EVENTSHOP_NUM_PROXIES", 0),
}
# Rate limits (config/api_throttles.py) on token login, per address, and on placing orders, per user:
# `<count>/<s|min|hour|day>`, or `off`.
EVENTSHOP_THROTTLE_LOGIN = env_throttle_rate("EVENTSHOP_THROTTLE_LOGIN", "10/min")
EVENTSHOP_THROTTLE_ORDERS = env_throttle_rate("EVENTSHOP_THROTTLE_ORDERS", "60/min")
SPECTACULAR_SETTINGS = {
    "TITLE": "Eventshop API",
    "DESCRIPTION": "Place orders; watch shipping and loyalty react through a message broker.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several components have a `status`; the order's appears in two (placed, and accepted with a
    # downstream failure): name each choice set after what it is.
    "ENUM_NAME_OVERRIDES": {
        "OrderStatusEnum": "shop.models.Order.Status",
        "ShipmentStatusEnum": "shipping.models.Shipment.Status",
    },
}

DEMO_PASSWORD = env_str("DEMO_PASSWORD", "eventshop-demo")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Every line names the request or message it belongs to (messaging/correlation.py).
    "filters": {"correlation_id": {"()": "messaging.correlation.CorrelationIdLogFilter"},
                "quiet_access_log": {"()": "config.logging.QuietAccessLogFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["correlation_id"]}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"},
                # runserver's access log (the demo's web process), without static files and polling.
                "django.server": {"handlers": ["console"], "filters": ["quiet_access_log"], "propagate": False}},
}

from .messaging import *  # noqa: E402,F401,F403
from .celery import *  # noqa: E402,F401,F403
from .services import *  # noqa: E402,F401,F403
