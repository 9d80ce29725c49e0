"""What the dashboards read: counts per outcome, queue depths from the broker, backlog, samples."""
import pytest
from django.db import transaction
from messaging.consumer import EventConsumer
from messaging.metrics import metrics_sample
from messaging.models import MetricSample
from messaging.outbox import outbox_event_record, outbox_publish
from messaging.selectors import consumer_stats, metric_series, outbox_backlogs, queue_depths
from messaging.topology import SUBSCRIPTIONS, event_bus_connect
from tests.messaging.builders import RecordingRetryScheduler, delivery, envelope, purchase

pytestmark = pytest.mark.django_db(databases=["default", "shipping", "loyalty"])


def test_consumer_stats_count_each_outcome_in_total_and_in_the_last_minute():
    consumer = EventConsumer(SUBSCRIPTIONS["shipping"])
    retries = RecordingRetryScheduler()
    message = delivery(envelope(purchase(order_id=1)))
    consumer.process(message, retries)
    consumer.process(message, retries)
    consumer.process(delivery(b"garbage"), retries)

    stats = consumer_stats(consumer="shipping")

    assert (stats.totals["applied"], stats.totals["duplicate"], stats.totals["dead_lettered"]) == (1, 1, 1)
    assert stats.last_minute["applied"] == 1
    assert stats.per_minute[-1]["duplicate"] == 1 and len(stats.per_minute) == 30
    assert stats.pending_dead_letters == 1
    assert [attempt.outcome for attempt in stats.recent] == ["dead_lettered", "duplicate", "applied"]


def test_queue_depths_are_read_from_the_broker(settings, tmp_path):
    settings.BROKER_URL = f"eventshop-sqlite:///{tmp_path / 'broker.sqlite3'}"
    with event_bus_connect() as bus, transaction.atomic():
        messages = [outbox_event_record(purchase(order_id=order_id), using="default") for order_id in (1, 2)]
        outbox_publish(using="default", messages=messages, bus=bus)

    depths = {depth.queue: depth.ready for depth in queue_depths()}

    assert depths["shipping.events"] == 2 and depths["loyalty.events"] == 2 and depths["shop.journey"] == 0


def test_the_outbox_backlog_counts_unpublished_rows_and_their_age():
    with transaction.atomic():
        outbox_event_record(purchase(order_id=3), using="default")

    backlog = {entry.database: entry for entry in outbox_backlogs()}

    assert backlog["default"].unpublished == 1 and backlog["shipping"].unpublished == 0
    assert backlog["default"].lag_seconds >= 0


def test_a_metrics_sample_records_depths_backlog_and_rates(settings, tmp_path):
    from django.utils import timezone

    settings.BROKER_URL = f"eventshop-sqlite:///{tmp_path / 'broker.sqlite3'}"
    event_bus_connect().close()  # declares the queues
    with transaction.atomic():
        outbox_event_record(purchase(order_id=4), using="default")
    now = timezone.now()

    metrics_sample(since=now - timezone.timedelta(seconds=2), now=now)

    series = metric_series(names=["outbox.unpublished", "queue.shipping.events.ready", "rate.published"])
    assert series["outbox.unpublished"][-1][1] == 1
    assert series["queue.shipping.events.ready"][-1][1] == 0
    assert MetricSample.objects.filter(name="rate.consumed.shipping").exists()
