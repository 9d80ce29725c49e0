"""The outbox relay process: sweeps every service's outbox for rows left unsent and publishes them."""
import logging
import signal
import time

from django.conf import settings
from django.db import DatabaseError, close_old_connections

from django.utils import timezone

from messaging.broker import broker_connection
from messaging.metrics import metrics_sample
from messaging.outbox import OutboxPublisher, outbox_relay_publish_pending

logger = logging.getLogger(__name__)


class OutboxRelay:
    RECONNECT_MAX_SECONDS = 30.0

    def __init__(self, databases: list[str], *, sample_metrics: bool = True):
        self.databases = databases
        self.should_stop = False
        self.sample_metrics = sample_metrics
        self._last_sample_at = timezone.now()

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._request_stop)
        signal.signal(signal.SIGINT, self._request_stop)
        backoff = 1.0
        publisher = None
        while not self.should_stop:
            try:
                publisher = publisher or OutboxPublisher(broker_connection(connect_timeout=2))
                published = self.sweep_once(publisher)
                self.sample_if_due()
                backoff = 1.0
                if not published:
                    time.sleep(settings.OUTBOX_RELAY_SWEEP_SECONDS)
            except DatabaseError as error:
                logger.warning("relay cannot read an outbox (%s); retrying in %.0fs", error, backoff)
                close_old_connections()
                backoff = self._pause(backoff)
            except Exception as error:  # broker unreachable or connection lost: reconnect later
                logger.warning("relay cannot publish (%s); retrying in %.0fs", error, backoff)
                if publisher is not None:
                    publisher.close()
                publisher = None
                backoff = self._pause(backoff)
        if publisher is not None:
            publisher.close()

    def sweep_once(self, publisher: OutboxPublisher) -> int:
        published = 0
        for database in self.databases:
            published += outbox_relay_publish_pending(
                using=database,
                publisher=publisher,
                grace_seconds=settings.OUTBOX_RELAY_GRACE_SECONDS,
                limit=settings.OUTBOX_RELAY_BATCH_SIZE,
            )
        if published:
            logger.info("relay published %d event(s) left unsent", published)
        return published

    def sample_if_due(self) -> None:
        now = timezone.now()
        if not self.sample_metrics or (now - self._last_sample_at).total_seconds() < settings.METRICS_SAMPLE_SECONDS:
            return
        try:
            metrics_sample(since=self._last_sample_at, now=now)
        except Exception as error:  # charts missing a point is no reason to stop relaying events
            logger.warning("could not sample metrics: %s", error)
        self._last_sample_at = now

    def _pause(self, backoff: float) -> float:
        time.sleep(backoff)
        return min(backoff * 2, self.RECONNECT_MAX_SECONDS)

    def _request_stop(self, signum, frame) -> None:
        self.should_stop = True
