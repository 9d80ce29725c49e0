"""Celery jobs sent from inside a transaction: at once, or, in a consumer's batch, together before it commits.

A handler sends its job inside its transaction (a crash between commit and send would lose it; a job
whose transaction then rolls back finds nothing to do). In a batch, `job_send` only collects; the
batch sends the jobs of the messages whose savepoints held just before its commit, all published
first and their publisher confirms awaited together, instead of one round trip per job. If they
cannot all be confirmed, the batch does not commit, and its messages come back.
"""
from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager

from messaging.brokers import BrokerError
from messaging.correlation import CELERY_HEADER, current_correlation_id

CONFIRM_TIMEOUT_SECONDS = 10.0


class _Jobs(threading.local):
    def __init__(self):
        self.collected: list | None = None  # (task, args, correlation id) while a batch collects
        self.connection = None
        self.producer = None
        self.published = 0  # publishes on the confirm-mode channel: the broker's delivery tags


_jobs = _Jobs()


def job_send(task, *args) -> None:
    """`task.delay(*args)`, unless a batch is collecting: then it goes out with the batch's others."""
    if _jobs.collected is not None:
        # The correlation id of the message that sent it: the batch sends it later, outside that message.
        _jobs.collected.append((task, args, current_correlation_id.get()))
    else:
        task.delay(*args)


@contextmanager
def jobs_collected():
    """Collect the jobs sent inside (one message's savepoint); yields the list, kept only if it held."""
    outer, _jobs.collected = _jobs.collected, []
    try:
        yield _jobs.collected
    finally:
        _jobs.collected = outer


def jobs_send_together(jobs: list) -> None:
    """Send `jobs` (task, args, correlation id) on Celery's broker and return once the broker has them all.

    On RabbitMQ: published on a confirm-mode channel without waiting, then all confirms awaited.
    Raises BrokerError if any is not confirmed (the caller's transaction must then not commit)."""
    if not jobs:
        return
    from config.celery import app

    try:
        if _jobs.producer is None:
            _jobs.connection = app.connection_for_write()
            _jobs.connection.ensure_connection(max_retries=1)
            channel = _jobs.connection.channel()
            if _is_amqp(_jobs.connection):
                channel.basic_publish = channel._basic_publish  # no wait per publish: confirms below
                channel.confirm_select()
            _jobs.producer = app.amqp.Producer(channel)
            _jobs.published = 0
        if not _is_amqp(_jobs.connection):
            for job in jobs:  # the embedded broker: each publish returns once it is stored
                _apply_async(*job)
            return
        _send_confirmed(jobs)
    except BrokerError:
        _reset()
        raise
    except Exception as error:  # kombu / amqp / socket: Celery's broker is away
        _reset()
        raise BrokerError(f"cannot send {len(jobs)} job(s) to Celery's broker: {type(error).__name__}: {error}") from error


def _send_confirmed(jobs: list) -> None:
    channel = _jobs.producer.channel
    first = _jobs.published + 1
    _jobs.published += len(jobs)
    last = _jobs.published
    waiting = set(range(first, last + 1))
    nacked = []

    def on_ack(tag, multiple):
        waiting.difference_update(range(first, tag + 1) if multiple else (tag,))

    def on_nack(tag, multiple):
        nacked.append(tag)
        on_ack(tag, multiple)

    channel.events["basic_ack"].add(on_ack)
    channel.events["basic_nack"].add(on_nack)
    try:
        for job in jobs:
            _apply_async(*job)
        deadline = time.monotonic() + CONFIRM_TIMEOUT_SECONDS
        while waiting and time.monotonic() < deadline:
            try:
                _jobs.connection.drain_events(timeout=max(deadline - time.monotonic(), 0.001))
            except socket.timeout:
                pass
    finally:
        channel.events["basic_ack"].discard(on_ack)
        channel.events["basic_nack"].discard(on_nack)
    if waiting or nacked:
        raise BrokerError(f"Celery's broker confirmed {len(jobs) - len(waiting) - len(nacked)} of {len(jobs)} jobs")


def _apply_async(task, args, correlation_id: str) -> None:
    headers = {CELERY_HEADER: correlation_id} if correlation_id else {}
    task.apply_async(args, producer=_jobs.producer, retry=False, headers=headers)


def _is_amqp(connection) -> bool:
    return connection.transport.driver_type == "amqp"


def _reset() -> None:
    if _jobs.connection is not None:
        try:
            _jobs.connection.release()
        except Exception:
            pass  # already broken
    _jobs.connection = _jobs.producer = None
