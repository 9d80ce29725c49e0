"""Connections to the message broker named by settings.BROKER_URL."""
from django.conf import settings
from kombu import Connection


def broker_url() -> str:
    return settings.BROKER_URL


def broker_is_rabbitmq(url: str | None = None) -> bool:
    return (url or broker_url()).startswith(("amqp://", "amqps://", "pyamqp://"))


def broker_connection(*, url: str | None = None, confirms: bool = True, connect_timeout: float = 5) -> Connection:
    """A new kombu connection. With `confirms`, every publish on it waits for the broker's
    publisher confirm, so a publish that returns means the broker has the message."""
    url = url or broker_url()
    if broker_is_rabbitmq(url):
        transport_options = {"confirm_publish": True} if confirms else {}
    else:
        transport_options = {"visibility_timeout": settings.BROKER_VISIBILITY_TIMEOUT_SECONDS}
    return Connection(url, connect_timeout=connect_timeout, transport_options=transport_options, heartbeat=30 if broker_is_rabbitmq(url) else 0)
