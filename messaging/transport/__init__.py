"""Kombu transports that ship with Eventshop.

``messaging.transport.sqlite`` is an embedded, SQLite-backed broker so the
demo runs without RabbitMQ or Redis installed. Call
:func:`register_transport_alias` before creating a kombu ``Connection`` or a
Celery app that uses an ``eventshop-sqlite://`` URL.
"""

from kombu.transport import TRANSPORT_ALIASES


def register_transport_alias():
    """Make kombu and Celery accept ``eventshop-sqlite://`` URLs.

    Idempotent: calling it again just sets the same alias.
    """
    TRANSPORT_ALIASES['eventshop-sqlite'] = (
        'messaging.transport.sqlite:Transport')
