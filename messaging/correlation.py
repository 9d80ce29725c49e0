"""The correlation id: carried from the HTTP request through every event it causes and every log line.

The web middleware (shop/middleware.py) sets it per request; the consumer runtime sets it per message
from the event's `correlationid`; Celery jobs carry it in a message header (`celery_propagate`); the
outbox stamps it on every event recorded meanwhile.
"""
import contextvars
import logging

from celery.signals import before_task_publish, task_postrun, task_prerun

current_correlation_id: contextvars.ContextVar[str] = contextvars.ContextVar("correlation_id", default="")


class CorrelationIdLogFilter(logging.Filter):
    """Puts `correlation_id` on every log record ("-" outside a request or message)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation_id = current_correlation_id.get() or "-"
        return True


# Not "correlation_id": Celery uses that name for the task id.
CELERY_HEADER = "eventshop_correlation_id"
_task_tokens: dict[str, contextvars.Token] = {}


@before_task_publish.connect
def _stamp_job(headers=None, **kwargs) -> None:
    """A job sent while handling a request or a message carries its correlation id."""
    correlation_id = current_correlation_id.get()
    if headers is not None and correlation_id:
        headers.setdefault(CELERY_HEADER, correlation_id)


@task_prerun.connect
def _adopt_job_correlation(task_id=None, task=None, **kwargs) -> None:
    correlation_id = task.request.get(CELERY_HEADER) if task is not None else None
    if correlation_id:
        _task_tokens[task_id] = current_correlation_id.set(correlation_id)


@task_postrun.connect
def _forget_job_correlation(task_id=None, **kwargs) -> None:
    token = _task_tokens.pop(task_id, None)
    if token is not None:
        current_correlation_id.reset(token)
