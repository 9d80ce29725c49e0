"""The ActiveMQ adapter against the port's contract, on the real broker, each test in a namespace of its own."""
import uuid

import pytest

from messaging.brokers import event_bus
from tests.integration.backends import ACTIVEMQ_HOST, ACTIVEMQ_STOMP_PORT, require_service
from tests.messaging.brokers.contract import *  # noqa: F401,F403  (the contract's tests)
from tests.messaging.brokers.contract import BrokerUnderTest


@pytest.fixture
def broker():
    require_service("ActiveMQ's STOMP port (scripts/activemq/start.sh)", ACTIVEMQ_HOST, ACTIVEMQ_STOMP_PORT)
    url = f"stomp://{ACTIVEMQ_HOST}:{ACTIVEMQ_STOMP_PORT}?namespace=c{uuid.uuid4().hex[:10]}"
    under_test = BrokerUnderTest(connect=lambda: event_bus(url), consumer_count=True)
    yield under_test
    under_test.close_all()
