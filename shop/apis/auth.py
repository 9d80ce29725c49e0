"""Exchange a username and password for the API token (DRF authtoken)."""
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.parsers import FormParser
from rest_framework.permissions import AllowAny

from config.api_errors import error_responses
from config.api_parsers import JSONParser
from config.api_throttles import LoginRateThrottle


class AuthTokenObtainApi(ObtainAuthToken):
    """DRF's own view: it checks the credentials and returns the user's one token, creating it once."""

    # No authentication here: a stale `Authorization: Token` header must not stop a client getting a fresh one.
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [LoginRateThrottle]  # password guessing: EVENTSHOP_THROTTLE_LOGIN per address
    parser_classes = [JSONParser, FormParser]  # FormParser: `curl -d username=...` works too

    @extend_schema(
        operation_id="auth_token_obtain",
        summary="Get an API token",
        description="Send the token back as `Authorization: Token <token>` on every other request.",
        request=AuthTokenSerializer,
        responses={
            200: inline_serializer("AuthTokenResponse", fields={"token": serializers.CharField()}),
            **error_responses(400, 429),
        },
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)
