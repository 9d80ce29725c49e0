"""The outbox relay process: sweeps every service's outbox for rows left unsent and publishes them."""
import logging
import signal
import time

from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.utils import timezone

from messaging.brokers import BrokerError, EventBus
from messaging.connecting import BrokerReconnector
from messaging.metrics import metrics_sample
from messaging.outbox import outbox_relay_publish_pending

logger = logging.getLogger(__name__)


class OutboxRelay:
    def __init__(self, databases: list[str], *, sample_metrics: bool = True):
        self.databases = databases
        self.should_stop = False
        self.sample_metrics = sample_metrics
        self._last_sample_at = timezone.now()

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._request_stop)
        signal.signal(signal.SIGINT, self._request_stop)
        reconnector = BrokerReconnector("relay", should_stop=lambda: self.should_stop)
        bus: EventBus | None = None
        while not self.should_stop:
            try:
                bus = bus or reconnector.connect()
                if bus is None:  # asked to stop while waiting for the broker
                    break
                published = self.sweep_once(bus)
                self.sample_if_due()
                reconnector.reset()
                if not published:
                    time.sleep(settings.OUTBOX_RELAY_SWEEP_SECONDS)
            except DatabaseError as error:
                logger.warning("relay cannot read an outbox (%s); retrying in %.0fs", error, reconnector.backoff)
                close_old_connections()
                reconnector.pause()
            except BrokerError as error:  # connection lost midway: reconnect later
                logger.warning("relay cannot publish (%s); reconnecting in %.0fs", error, reconnector.backoff)
                if bus is not None:
                    bus.close()
                bus = None
                reconnector.pause()
        if bus is not None:
            bus.close()

    def sweep_once(self, bus: EventBus) -> int:
        published = 0
        for database in self.databases:
            published += outbox_relay_publish_pending(
                using=database,
                bus=bus,
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

    def _request_stop(self, signum, frame) -> None:
        self.should_stop = True
