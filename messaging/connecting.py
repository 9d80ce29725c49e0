"""Connecting a long-running process (relay, consumer) to the broker, and waiting out its outages.

At start, a broker that cannot be reached within BROKER_START_WAIT_SECONDS is a configuration
problem a person must see: one line naming BROKER_URL, and the command exits non-zero. Once the
process has been connected, a lost broker is waited out with exponential backoff, forever: under
docker compose or systemd an exit would only become a crash loop.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.conf import settings

from messaging.brokers import BrokerError, EventBus
from messaging.topology import event_bus_connect

logger = logging.getLogger(__name__)


class BrokerUnreachable(Exception):
    """The broker was not reachable when the process started."""


class BrokerReconnector:
    FIRST_BACKOFF_SECONDS = 1.0
    MAX_BACKOFF_SECONDS = 30.0
    CONNECT_TIMEOUT_SECONDS = 5.0

    def __init__(self, role: str, *, should_stop: Callable[[], bool]):
        self.role = role
        self.should_stop = should_stop
        self.backoff = self.FIRST_BACKOFF_SECONDS
        self.connected_once = False

    def connect(self) -> EventBus | None:
        """A connected bus with the topology declared; None if asked to stop while waiting."""
        started = time.monotonic()
        while not self.should_stop():
            try:
                bus = event_bus_connect(connect_timeout=self.CONNECT_TIMEOUT_SECONDS)
            except BrokerError as error:
                if not self.connected_once and time.monotonic() - started >= settings.BROKER_START_WAIT_SECONDS:
                    raise BrokerUnreachable(f"BROKER_URL: {error}") from error
                logger.warning("%s cannot reach the broker (%s); retrying in %.0fs", self.role, error, self.backoff)
                self.pause()
                continue
            if self.connected_once:
                logger.info("%s reconnected to the broker", self.role)
            self.connected_once = True
            return bus
        return None

    def pause(self) -> None:
        """Sleep for the current backoff (waking early to stop), then double it."""
        deadline = time.monotonic() + self.backoff
        while not self.should_stop() and time.monotonic() < deadline:
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        self.backoff = min(self.backoff * 2, self.MAX_BACKOFF_SECONDS)

    def reset(self) -> None:
        self.backoff = self.FIRST_BACKOFF_SECONDS
