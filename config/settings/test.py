"""Settings for the test suite: fast hashing, media in a temporary folder."""
import tempfile

from .base import *  # noqa: F401,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MEDIA_ROOT = tempfile.mkdtemp(prefix="eventshop-media-")
STATIC_ROOT = tempfile.mkdtemp(prefix="eventshop-static-")
# Unit tests publish through the in-memory fake unless a test asks for a real broker.
OUTBOX_PUBLISH_ON_COMMIT = False
# Tasks sent by handlers under test stay in memory; task tests call the task functions directly.
CELERY_BROKER_URL = "memory://"
# No rate limits: tests place orders and log in faster than any customer. The throttling tests
# (tests/shop/test_api_throttling.py) set the rates they test.
EVENTSHOP_THROTTLE_LOGIN = None
EVENTSHOP_THROTTLE_ORDERS = None
