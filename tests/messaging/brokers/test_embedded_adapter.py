"""The embedded adapter (the SQLite file broker through kombu) against the port's contract, each test on a file of its own."""
import pytest

from messaging.brokers import event_bus
from messaging.brokers.embedded import EmbeddedBus
from tests.messaging.brokers.contract import *  # noqa: F401,F403  (the contract's tests)
from tests.messaging.brokers.contract import SHIPPING, BrokerUnderTest, event, fetch_until


@pytest.fixture
def broker(tmp_path, settings):
    # A claimed, unsettled message comes back after the visibility timeout (the consumer died).
    settings.BROKER_VISIBILITY_TIMEOUT_SECONDS = 1
    url = f"eventshop-sqlite:///{tmp_path / 'broker.sqlite3'}"
    under_test = BrokerUnderTest(connect=lambda: event_bus(url), consumer_count=False)
    yield under_test
    under_test.close_all()


def test_the_url_picks_the_embedded_adapter(broker):
    assert isinstance(broker.open(), EmbeddedBus)


def test_a_message_claimed_and_never_settled_comes_back_after_the_visibility_timeout_with_the_same_reader(broker):
    bus = broker.open()
    bus.publish([event("shop.order.cancelled.o-1")])
    reader = bus.subscribe(SHIPPING, prefetch=10)
    [first] = fetch_until(reader, 1, settle=False)

    [again] = fetch_until(reader, 1, within=5)

    assert (again.body, again.redeliveries) == (first.body, 1)

