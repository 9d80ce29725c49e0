"""The event-bus port (`base`) and one adapter per broker, picked by BROKER_URL's scheme.

| scheme | adapter | broker |
|---|---|---|
| `eventshop-sqlite://` (default), `memory://` | `embedded` | the SQLite file broker (kombu transport), kombu's in-memory one in unit tests |
| `amqp://`, `amqps://`, `pyamqp://` | `rabbitmq` | RabbitMQ (kombu / py-amqp) |
| `sqs://` | `sqs` | Amazon SQS + SNS (boto3); moto's server stands in locally |
| `stomp://`, `stomp+ssl://` | `activemq` | ActiveMQ Classic 5.x over STOMP (stomp.py) |
"""
from __future__ import annotations

from importlib import import_module
from urllib.parse import urlsplit

from messaging.brokers.base import (
    ATTEMPT_HEADER,
    BrokerConfigurationError,
    BrokerError,
    Capabilities,
    Delivery,
    EventBus,
    OutgoingMessage,
    PublishResult,
    QueueDepth,
    SubscriptionReader,
)

# scheme -> (broker kind, "module:Class")
ADAPTERS = {
    "eventshop-sqlite": ("embedded", "messaging.brokers.embedded:EmbeddedBus"),
    "memory": ("embedded", "messaging.brokers.embedded:EmbeddedBus"),
    "amqp": ("rabbitmq", "messaging.brokers.rabbitmq:RabbitMQBus"),
    "amqps": ("rabbitmq", "messaging.brokers.rabbitmq:RabbitMQBus"),
    "pyamqp": ("rabbitmq", "messaging.brokers.rabbitmq:RabbitMQBus"),
    "sqs": ("sqs", "messaging.brokers.sqs:SqsBus"),
    "stomp": ("activemq", "messaging.brokers.activemq:ActiveMQBus"),
    "stomp+ssl": ("activemq", "messaging.brokers.activemq:ActiveMQBus"),
}
BROKER_KINDS = ("embedded", "rabbitmq", "activemq", "sqs")


def _scheme(url: str) -> str:
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ADAPTERS:
        known = ", ".join(f"{name}://" for name in ADAPTERS)
        raise BrokerConfigurationError(f"BROKER_URL={EventBus.describe_url(url)!r}: unknown scheme {scheme!r}; use one of {known}")
    return scheme


def broker_kind(url: str | None = None) -> str:
    """'embedded', 'rabbitmq', 'sqs' or 'activemq': what the dashboards and the banner name."""
    return ADAPTERS[_scheme(url or _configured_url())][0]


def adapter_class(url: str | None = None) -> type[EventBus]:
    module, name = ADAPTERS[_scheme(url or _configured_url())][1].split(":")
    return getattr(import_module(module), name)


def event_bus(url: str | None = None, *, connect_timeout: float = 5.0) -> EventBus:
    """A connected bus for BROKER_URL (or `url`). Raises BrokerConfigurationError for a URL no adapter
    takes, BrokerError when the broker cannot be reached within `connect_timeout`."""
    url = url or _configured_url()
    return adapter_class(url)(url, connect_timeout=connect_timeout)


def _configured_url() -> str:
    from django.conf import settings

    return settings.BROKER_URL


__all__ = [
    "ADAPTERS", "ATTEMPT_HEADER", "BROKER_KINDS", "BrokerConfigurationError", "BrokerError", "Capabilities", "Delivery",
    "EventBus", "OutgoingMessage", "PublishResult", "QueueDepth", "SubscriptionReader", "adapter_class", "broker_kind",
    "event_bus",
]
