"""Rate limits on the two API operations worth guessing or flooding: token login and placing orders.

Each rate is a setting (`EVENTSHOP_THROTTLE_LOGIN`, `EVENTSHOP_THROTTLE_ORDERS`, from the environment)
read per request, so `off` (None) disables it and a test can change it. A refused request answers 429
with `Retry-After`. The counts live in the default cache: per process with the local-memory cache,
shared by every process with a shared one (docs/operations.md, "Production").
"""
from django.conf import settings
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

# Members of this group (the load generator's user, made by seed_demo) place orders unthrottled.
LOAD_TESTERS_GROUP = "load-testers"


class RateFromSettingMixin:
    """DRF reads its rates once, at import; these read a setting of ours on each request instead."""

    rate_setting: str

    def get_rate(self) -> str | None:
        return getattr(settings, self.rate_setting)


class LoginRateThrottle(RateFromSettingMixin, AnonRateThrottle):
    """Logins per client address: the login view authenticates nobody. Behind proxies, the address is
    taken from X-Forwarded-For as far as EVENTSHOP_NUM_PROXIES (DRF's NUM_PROXIES) trusts it."""

    scope = "login"
    rate_setting = "EVENTSHOP_THROTTLE_LOGIN"


class OrderPlaceRateThrottle(RateFromSettingMixin, UserRateThrottle):
    """Orders placed per user, except by the load testers."""

    scope = "orders"
    rate_setting = "EVENTSHOP_THROTTLE_ORDERS"

    def allow_request(self, request, view) -> bool:
        if request.user.is_authenticated and request.user.groups.filter(name=LOAD_TESTERS_GROUP).exists():
            return True
        return super().allow_request(request, view)
