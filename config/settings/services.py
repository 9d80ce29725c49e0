"""How the services reach each other outside the broker: sync checkout calls and callbacks."""
from .env import env_bool, env_float, env_str

# In the sync checkout mode the shop calls shipping and loyalty over HTTP at this address.
SERVICE_BASE_URL = env_str("SERVICE_BASE_URL", "http://127.0.0.1:8000")
CHECKOUT_SYNC_TIMEOUT_SECONDS = env_float("CHECKOUT_SYNC_TIMEOUT_SECONDS", 5.0)
# Shared by the services' internal endpoints (/internal/...); set a real secret in production.
INTERNAL_API_TOKEN = env_str("INTERNAL_API_TOKEN", "dev-only-internal-token")

# Order callbacks: signed with HMAC-SHA256. Private and loopback targets are refused unless allowed
# (the demo and the tests allow them; production must not: SSRF).
CALLBACK_SIGNING_SECRET = env_str("CALLBACK_SIGNING_SECRET", "dev-only-callback-secret")
CALLBACK_ALLOW_PRIVATE_URLS = env_bool("CALLBACK_ALLOW_PRIVATE_URLS", False)
