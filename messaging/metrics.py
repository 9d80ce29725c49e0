"""Sampling the flow every few seconds for the charts: queue depths, outbox backlog, rates.

The relay process takes the samples (it runs wherever the shop runs); each sample is one row per
metric in the shop's database. Rates are events per second over the sampling interval.
"""
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from messaging.models import DeliveryAttempt, MetricSample, OutboxMessage
from messaging.selectors import outbox_backlogs, queue_depths
from messaging.topology import SUBSCRIPTIONS

logger = logging.getLogger(__name__)
KEEP_SAMPLES_FOR = timedelta(hours=6)


def metrics_sample(*, since: datetime, now: datetime | None = None) -> list[MetricSample]:
    """Record one sample of every metric; rates cover the interval since `since`."""
    now = now or timezone.now()
    interval = max((now - since).total_seconds(), 0.001)
    values: dict[str, float] = {}
    for depth in queue_depths():
        if depth.ready is not None:
            values[f"queue.{depth.queue}.ready"] = depth.ready
    backlogs = outbox_backlogs()
    values["outbox.unpublished"] = sum(backlog.unpublished for backlog in backlogs)
    values["outbox.lag_seconds"] = max((backlog.lag_seconds for backlog in backlogs), default=0.0)
    published = sum(OutboxMessage.objects.using(alias).filter(published_at__gt=since, published_at__lte=now).count()
                    for alias in settings.DATABASES)
    values["rate.published"] = published / interval
    for name, subscription in SUBSCRIPTIONS.items():
        handled = DeliveryAttempt.objects.using(subscription.database).filter(
            consumer=name, created_at__gt=since, created_at__lte=now).aggregate(n=Count("id"))["n"]
        values[f"rate.consumed.{name}"] = handled / interval
    samples = MetricSample.objects.using("default").bulk_create(
        MetricSample(name=name, value=value, sampled_at=now) for name, value in values.items())
    MetricSample.objects.using("default").filter(sampled_at__lt=now - KEEP_SAMPLES_FOR).delete()
    return samples
