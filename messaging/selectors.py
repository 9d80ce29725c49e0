"""Every read the dashboards and the operations view make about messaging: counts, rates, depths.

Counts come from the consumers' own records (`DeliveryAttempt`, in each service's database); queue
depths and consumer counts come from the broker itself (a passive queue declare: exact, no lag).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Min, Q
from django.db.models.functions import TruncMinute
from django.utils import timezone

from messaging.brokers import BrokerConfigurationError, BrokerError, QueueDepth, event_bus
from messaging.models import ConsumerState, DeadLetter, DeliveryAttempt, DeliveryOutcome, MetricSample, OutboxMessage
from messaging.topology import SUBSCRIPTIONS, all_queue_names

OUTCOMES = [choice.value for choice in DeliveryOutcome]
logger = logging.getLogger(__name__)
HEARTBEAT_STALE_SECONDS = 15  # three missed heartbeats: the consumer is probably down


@dataclass
class ConsumerStats:
    consumer: str
    totals: dict[str, int]
    last_minute: dict[str, int]
    per_minute: list[dict]  # [{"minute": datetime, "applied": n, "duplicate": n, ...}], oldest first
    pending_dead_letters: int
    last_heartbeat_at: datetime | None
    paused: bool
    faults: dict
    recent: list[DeliveryAttempt] = field(default_factory=list)

    @property
    def heartbeat_age_seconds(self) -> float | None:
        return None if self.last_heartbeat_at is None else (timezone.now() - self.last_heartbeat_at).total_seconds()

    @property
    def is_alive(self) -> bool:
        age = self.heartbeat_age_seconds
        return age is not None and age < HEARTBEAT_STALE_SECONDS


def consumer_stats(*, consumer: str, minutes: int = 30, recent: int = 20) -> ConsumerStats:
    database = SUBSCRIPTIONS[consumer].database
    attempts = DeliveryAttempt.objects.using(database).filter(consumer=consumer)
    now = timezone.now()
    totals = dict.fromkeys(OUTCOMES, 0)
    totals.update(dict(attempts.values_list("outcome").annotate(n=Count("id")).order_by()))
    last_minute = dict.fromkeys(OUTCOMES, 0)
    last_minute.update(dict(
        attempts.filter(created_at__gte=now - timedelta(minutes=1)).values_list("outcome").annotate(n=Count("id")).order_by()
    ))
    state = ConsumerState.objects.using(database).filter(consumer=consumer).first()
    return ConsumerStats(
        consumer=consumer,
        totals=totals,
        last_minute=last_minute,
        per_minute=_per_minute(attempts, now=now, minutes=minutes),
        pending_dead_letters=DeadLetter.objects.using(database).filter(
            consumer=consumer, status=DeadLetter.Status.PENDING).count(),
        last_heartbeat_at=state.last_heartbeat_at if state else None,
        paused=bool(state and state.is_paused),
        faults=state.faults if state else {},
        recent=list(attempts.order_by("-created_at", "-id")[:recent]),
    )


def _per_minute(attempts, *, now: datetime, minutes: int) -> list[dict]:
    start = (now - timedelta(minutes=minutes - 1)).replace(second=0, microsecond=0)
    rows = (attempts.filter(created_at__gte=start).annotate(minute=TruncMinute("created_at"))
            .values("minute", "outcome").annotate(n=Count("id")).order_by())
    series = {start + timedelta(minutes=offset): dict.fromkeys(OUTCOMES, 0) for offset in range(minutes)}
    for row in rows:
        bucket = series.get(row["minute"])
        if bucket is not None:
            bucket[row["outcome"]] = row["n"]
    return [{"minute": minute, **counts} for minute, counts in series.items()]


def queue_depths() -> list[QueueDepth]:
    """Ready messages and consumers per queue, as the brokers report them right now: the event
    queues from the event bus, the work queues from Celery's broker (another one on ActiveMQ and SQS).
    Raises BrokerError when the event broker cannot be reached."""
    with event_bus(connect_timeout=2) as bus:
        depths = bus.queue_depths(all_queue_names())
    return depths + _work_queue_depths()


def _work_queue_depths() -> list[QueueDepth]:
    names = list(settings.WORK_QUEUES)
    try:
        with event_bus(settings.CELERY_BROKER_URL, connect_timeout=2) as bus:
            return bus.queue_depths(names)
    except BrokerConfigurationError:  # a Celery broker no adapter of ours reads (Redis): unknown
        return [QueueDepth(name, None, None) for name in names]
    except BrokerError as error:
        logger.warning("cannot read the work queues' depths: %s", error)
        return [QueueDepth(name, None, None) for name in names]


@dataclass
class OutboxBacklog:
    database: str
    unpublished: int
    oldest_unpublished_at: datetime | None

    @property
    def lag_seconds(self) -> float:
        return 0.0 if self.oldest_unpublished_at is None else (timezone.now() - self.oldest_unpublished_at).total_seconds()


def outbox_backlogs() -> list[OutboxBacklog]:
    backlogs = []
    for alias in settings.DATABASES:
        pending = OutboxMessage.objects.using(alias).filter(published_at__isnull=True).aggregate(
            count=Count("id"), oldest=Min("created_at"))
        backlogs.append(OutboxBacklog(alias, pending["count"], pending["oldest"]))
    return backlogs


def publish_rate_per_minute(*, minutes: int = 30) -> list[dict]:
    """Events confirmed by the broker per minute, all services together, oldest first."""
    now = timezone.now()
    start = (now - timedelta(minutes=minutes - 1)).replace(second=0, microsecond=0)
    series = {start + timedelta(minutes=offset): 0 for offset in range(minutes)}
    for alias in settings.DATABASES:
        rows = (OutboxMessage.objects.using(alias).filter(published_at__gte=start)
                .annotate(minute=TruncMinute("published_at")).values("minute").annotate(n=Count("id")).order_by())
        for row in rows:
            if row["minute"] in series:
                series[row["minute"]] += row["n"]
    return [{"minute": minute, "published": count} for minute, count in series.items()]


def metric_series(*, names: list[str], seconds: int = 600) -> dict[str, list[tuple[datetime, float]]]:
    """Sampled metrics (queue depths, rates) for charts, oldest first."""
    since = timezone.now() - timedelta(seconds=seconds)
    samples = MetricSample.objects.using("default").filter(name__in=names, sampled_at__gte=since).order_by("sampled_at")
    series: dict[str, list] = {name: [] for name in names}
    for sample in samples:
        series[sample.name].append((sample.sampled_at, sample.value))
    return series


def delivery_journey(*, subject: str) -> list[DeliveryAttempt]:
    """Every delivery of an order's events, across every consumer's database, in time order."""
    attempts = []
    for alias in {subscription.database for subscription in SUBSCRIPTIONS.values()}:
        attempts += DeliveryAttempt.objects.using(alias).filter(Q(subject=subject))
    return sorted(attempts, key=lambda attempt: attempt.created_at)
