"""The correlation id: carried from the HTTP request through every event it causes and every log line.

The web middleware (shop/middleware.py) sets it per request; the consumer runtime sets it per message
from the event's `correlationid`; the outbox stamps it on every event recorded meanwhile.
"""
import contextvars
import logging

current_correlation_id: contextvars.ContextVar[str] = contextvars.ContextVar("correlation_id", default="")


class CorrelationIdLogFilter(logging.Filter):
    """Puts `correlation_id` on every log record ("-" outside a request or message)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation_id = current_correlation_id.get() or "-"
        return True
