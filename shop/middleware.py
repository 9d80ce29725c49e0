"""The correlation id: one token that follows a request into every event it causes, and every log line.

A client may send its own `X-Correlation-ID` (a sane token), so its logs and ours can be joined;
otherwise the request gets a fresh one. The outbox stamps it on every event recorded while the
request runs, and the consumers carry it into the events those cause (messaging/consumer.py).
"""
import re
import uuid

from messaging.correlation import CorrelationIdLogFilter, current_correlation_id

CORRELATION_ID_HEADER = "X-Correlation-ID"
# What we accept from outside: it ends up in logs, headers and a 64-character column.
SANE_CORRELATION_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def correlation_id_from(value: str | None) -> str:
    """The client's id if it is a sane token, else a new one."""
    if value and SANE_CORRELATION_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


class CorrelationIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        correlation_id = correlation_id_from(request.headers.get(CORRELATION_ID_HEADER))
        request.correlation_id = correlation_id
        token = current_correlation_id.set(correlation_id)
        try:
            response = self.get_response(request)
        finally:
            current_correlation_id.reset(token)
        response[CORRELATION_ID_HEADER] = correlation_id
        return response


__all__ = ["CorrelationIdLogFilter", "CorrelationIdMiddleware"]
