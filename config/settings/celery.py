"""Celery runs the work queues (shipping labels, callbacks): jobs spread across competing workers."""
from .env import VAR_DIR, env_float, env_str
from .messaging import BROKER_URL, BROKER_VISIBILITY_TIMEOUT_SECONDS

# Celery's work queues stay on a broker Celery supports: the event broker itself when it is RabbitMQ
# or the embedded one; beside ActiveMQ (no Celery transport) and SQS, the embedded SQLite file broker.
# Set CELERY_BROKER_URL (amqp://, redis://, sqs://) to put them elsewhere.


def _without_event_bus_options(url: str) -> str:
    """The URL without the RabbitMQ adapter's own options (`single_active_consumer`), which kombu refuses.
    Any other URL is returned as it is: rebuilding `eventshop-sqlite:////abs/path` would lose a slash."""
    from urllib.parse import parse_qsl, urlencode, urlsplit

    if not url.startswith(("amqp", "pyamqp")) or "single_active_consumer" not in url:
        return url
    parts = urlsplit(url)
    query = [(key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True) if key != "single_active_consumer"]
    return parts._replace(query=urlencode(query)).geturl()


CELERY_BROKER_URL = env_str(
    "CELERY_BROKER_URL",
    f"eventshop-sqlite:///{VAR_DIR / 'celery-broker.sqlite3'}" if BROKER_URL.startswith(("stomp", "sqs"))
    else _without_event_bus_options(BROKER_URL),
)
# On RabbitMQ a job is sent with a publisher confirm, so `delay()` returns once the broker has it.
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {"confirm_publish": True} if CELERY_BROKER_URL.startswith(("amqp", "pyamqp"))
    else {"visibility_timeout": BROKER_VISIBILITY_TIMEOUT_SECONDS}
)
CELERY_TASK_ACKS_LATE = True  # a task is acked after it ran, so a crashed worker's job runs again
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # long jobs: a worker holds one at a time, the rest stay shared
CELERY_TASK_DEFAULT_QUEUE = "work.default"
CELERY_TASK_ROUTES = {"shipping.tasks.*": {"queue": "work.shipping-labels"}}
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# The queues a demo worker consumes (`celery -A config worker -Q ...`).
WORK_QUEUES = ("work.shipping-labels", "work.default")

# Stands in for a label printer's API: makes each job take long enough to watch two workers share them.
SHIPPING_LABEL_EXTRA_SECONDS = env_float("SHIPPING_LABEL_EXTRA_SECONDS", 0.0)
