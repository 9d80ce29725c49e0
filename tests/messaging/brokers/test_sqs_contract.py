"""The SQS + SNS adapter against the port's contract, on the emulator, each test in a namespace of its own."""
import uuid

import pytest

from messaging.brokers import event_bus
from tests.integration.backends import SQS_HOST, SQS_PORT, require_service
from tests.messaging.brokers.contract import *  # noqa: F401,F403  (the contract's tests)
from tests.messaging.brokers.contract import BrokerUnderTest


@pytest.fixture
def broker():
    require_service("the SQS + SNS emulator (scripts/sqs/start.sh)", SQS_HOST, SQS_PORT)
    # A short visibility timeout: an unsettled message comes back within the test's patience.
    url = (f"sqs://us-east-1?endpoint=http://{SQS_HOST}:{SQS_PORT}&namespace=c{uuid.uuid4().hex[:10]}"
           "&visibility_timeout=1")
    under_test = BrokerUnderTest(connect=lambda: event_bus(url), consumer_count=False)
    yield under_test
    under_test.close_all()
