"""Fixtures for the messaging tests."""
import pytest

from tests.messaging.builders import in_memory_broker, messages_on_queue


@pytest.fixture
def broker(settings):
    connection = in_memory_broker(settings)
    yield connection
    messages_on_queue(connection)
    connection.release()
