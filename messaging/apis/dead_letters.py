"""The dead-letter API one at a time: list them, show one, replay or discard it; with their serializers."""
import base64

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api_errors import ApiError, ErrorSerializer, error_responses
from messaging.dead_letters import (
    BrokerUnavailable,
    dead_letter_get,
    dead_letter_list,
    dead_letters_discard,
    dead_letters_replay_if_broker_reachable,
)
from messaging.models import DeadLetter
from messaging.topology import SUBSCRIPTIONS

CONSUMER_PARAMETER = OpenApiParameter("consumer", OpenApiTypes.STR, OpenApiParameter.PATH, enum=list(SUBSCRIPTIONS),
                                      description="The consumer that gave up on the messages.")
ID_PARAMETER = OpenApiParameter("dead_letter_id", OpenApiTypes.INT, OpenApiParameter.PATH)
BROKER_UNAVAILABLE_RESPONSE = OpenApiResponse(
    ErrorSerializer, description="The broker cannot be reached: nothing was replayed (or, if it failed midway, the "
                                 "detail says how many were).",
)


# One named enum for both representations below: drf-spectacular cannot name a choice set that
# several components share under a field name ("status") that other components use differently.
@extend_schema_field({"type": "string", "enum": DeadLetter.Status.values}, component_name="DeadLetterStatus")
class DeadLetterStatusField(serializers.ChoiceField):
    def __init__(self, **kwargs):
        super().__init__(choices=DeadLetter.Status.choices, **kwargs)


@extend_schema_serializer(component_name="DeadLetterSummary")
class DeadLetterSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    consumer = serializers.CharField()
    event_id = serializers.UUIDField(allow_null=True)
    event_type = serializers.CharField()
    subject = serializers.CharField()
    reason = serializers.CharField()
    detail = serializers.SerializerMethodField(help_text="The first line of the detail.")
    attempts = serializers.IntegerField()
    status = DeadLetterStatusField()
    created_at = serializers.DateTimeField()
    resolved_at = serializers.DateTimeField(allow_null=True)

    def get_detail(self, letter) -> str:
        return next(iter(letter.detail.splitlines()), "")


# The one full representation of a dead letter, answered by every operation on one.
@extend_schema_serializer(component_name="DeadLetter")
class DeadLetterSerializer(DeadLetterSummarySerializer):
    detail = serializers.CharField()
    routing_key = serializers.CharField()
    content_type = serializers.CharField()
    headers = serializers.DictField(help_text="The message's headers as the consumer received them.")
    body = serializers.CharField(source="body_text", help_text="The body as UTF-8 text, invalid bytes replaced.")
    body_base64 = serializers.SerializerMethodField(help_text="The body byte for byte, base64-encoded.")

    def get_body_base64(self, letter) -> str:
        return base64.b64encode(bytes(letter.body)).decode("ascii")


class DeadLetterListApi(GenericAPIView):
    permission_classes = [IsAdminUser]

    class FilterSerializer(serializers.Serializer):
        consumer = serializers.ChoiceField(choices=list(SUBSCRIPTIONS), help_text="Whose dead letters.")
        status = serializers.ChoiceField(choices=[*DeadLetter.Status.values, "all"], default=DeadLetter.Status.PENDING)
        reason = serializers.CharField(required=False, help_text="e.g. handler_error, not_json, retries_exhausted")
        type = serializers.CharField(required=False, help_text="An event type, e.g. shop.purchase.confirmed")

    @extend_schema(
        operation_id="messaging_dead_letters_list",
        summary="List a consumer's dead letters (staff)",
        description="Newest first, paginated with `limit` and `offset`. `detail` is its first line here.",
        parameters=[FilterSerializer],
        responses={200: DeadLetterSummarySerializer(many=True), **error_responses(400, 401, 403)},
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        letters = dead_letter_list(consumer=data["consumer"], status=None if data["status"] == "all" else data["status"],
                                   reason=data.get("reason"), event_type=data.get("type"))
        page = self.paginate_queryset(letters)
        return self.get_paginated_response(DeadLetterSummarySerializer(page, many=True).data)


class DeadLetterDetailApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        operation_id="messaging_dead_letters_retrieve",
        summary="Show a dead letter with its headers and body (staff)",
        parameters=[CONSUMER_PARAMETER, ID_PARAMETER],
        responses={200: DeadLetterSerializer, **error_responses(401, 403, 404)},
    )
    def get(self, request, consumer: str, dead_letter_id: int):
        return Response(DeadLetterSerializer(_dead_letter(consumer, dead_letter_id)).data)


class DeadLetterReplayApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        operation_id="messaging_dead_letters_replay",
        summary="Replay a pending dead letter (staff)",
        description="Puts the message back on the consumer's queue byte for byte, with its event id, and marks it "
                    "replayed. If it had in fact been applied, the consumer's inbox skips it as a duplicate.",
        request=None,
        parameters=[CONSUMER_PARAMETER, ID_PARAMETER],
        responses={200: DeadLetterSerializer, **error_responses(401, 403, 404, 409), 503: BROKER_UNAVAILABLE_RESPONSE},
    )
    def post(self, request, consumer: str, dead_letter_id: int):
        letter = _pending_dead_letter(consumer, dead_letter_id, action="replayed")
        _replay(consumer, [letter])
        letter.refresh_from_db()
        return Response(DeadLetterSerializer(letter).data)


class DeadLetterDiscardApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        operation_id="messaging_dead_letters_discard",
        summary="Discard a pending dead letter (staff)",
        request=None,
        parameters=[CONSUMER_PARAMETER, ID_PARAMETER],
        responses={200: DeadLetterSerializer, **error_responses(401, 403, 404, 409)},
    )
    def post(self, request, consumer: str, dead_letter_id: int):
        letter = _pending_dead_letter(consumer, dead_letter_id, action="discarded")
        if not dead_letters_discard(consumer=consumer, dead_letters=[letter]):
            letter.refresh_from_db()  # resolved by someone else since we read it
            raise _not_pending(letter, action="discarded")
        letter.refresh_from_db()
        return Response(DeadLetterSerializer(letter).data)


def _known_consumer(consumer: str) -> str:
    if consumer not in SUBSCRIPTIONS:
        raise NotFound()
    return consumer


def _dead_letter(consumer: str, dead_letter_id: int) -> DeadLetter:
    try:
        return dead_letter_get(consumer=_known_consumer(consumer), dead_letter_id=dead_letter_id)
    except DeadLetter.DoesNotExist:
        raise NotFound() from None


def _pending_dead_letter(consumer: str, dead_letter_id: int, *, action: str) -> DeadLetter:
    letter = _dead_letter(consumer, dead_letter_id)
    if letter.status != DeadLetter.Status.PENDING:
        raise _not_pending(letter, action=action)
    return letter


def _not_pending(letter: DeadLetter, *, action: str) -> ApiError:
    return ApiError(status_code=status.HTTP_409_CONFLICT, code="DeadLetterNotPending", errors={},
                    detail=f"Dead letter {letter.pk} is already {letter.status}; only pending ones can be {action}.")


def _replay(consumer: str, letters: list[DeadLetter]) -> int:
    try:
        return dead_letters_replay_if_broker_reachable(consumer=consumer, dead_letters=letters)
    except BrokerUnavailable as error:
        raise ApiError(status_code=status.HTTP_503_SERVICE_UNAVAILABLE, code="BrokerUnavailable", errors={},
                       detail=str(error)) from error
