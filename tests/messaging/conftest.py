"""Fixtures for the messaging tests."""
import pytest

from tests.messaging.builders import in_memory_broker, messages_on_queue


@pytest.fixture
def broker(settings):
    url = in_memory_broker(settings)
    yield url
    messages_on_queue(url)
