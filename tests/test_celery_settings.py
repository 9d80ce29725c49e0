"""Celery's broker URL, derived from BROKER_URL."""
from config.settings.celery import _without_event_bus_options


def test_the_rabbitmq_adapters_own_option_is_dropped_for_celery():
    assert _without_event_bus_options("amqp://guest:guest@127.0.0.1:5672/v?single_active_consumer=1&heartbeat=30") == \
        "amqp://guest:guest@127.0.0.1:5672/v?heartbeat=30"


def test_any_other_url_is_kept_byte_for_byte():
    for url in ("eventshop-sqlite:////tmp/run/broker.sqlite3", "eventshop-sqlite:///var/broker.sqlite3",
                "amqp://guest:guest@127.0.0.1:5672//"):
        assert _without_event_bus_options(url) == url
