"""The dead-letter API for many at once: replay or discard pending dead letters by id or by filter."""
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api_errors import error_responses
from config.api_parsers import JSONParser
from messaging.apis.dead_letters import BROKER_UNAVAILABLE_RESPONSE, CONSUMER_PARAMETER, _known_consumer, _replay
from messaging.dead_letters import dead_letter_list, dead_letters_discard, dead_letters_get_many
from messaging.models import DeadLetter

MAX_IDS = 1000


@extend_schema_serializer(component_name="DeadLetterSelection")
class DeadLetterSelectionSerializer(serializers.Serializer):
    """Which dead letters a bulk operation takes: by id, or the pending ones matching a filter."""

    ids = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False, allow_empty=False,
                                max_length=MAX_IDS, help_text="These dead letters (those not pending are skipped).")
    reason = serializers.CharField(required=False, max_length=64, help_text="Every pending one with this reason.")
    type = serializers.CharField(required=False, max_length=100, help_text="Every pending one of this event type.")
    all = serializers.BooleanField(default=False, help_text="Every pending one (narrowed by `reason` and `type`).")

    def validate(self, data):
        filtered = data["all"] or "reason" in data or "type" in data
        if "ids" in data and filtered:
            raise ValidationError("Give either ids or a filter (reason, type, all), not both.")
        if "ids" not in data and not filtered:
            raise ValidationError("Say which dead letters: ids, reason, type, or all: true.")
        return data


class DeadLetterBulkReplayApi(APIView):
    permission_classes = [IsAdminUser]
    parser_classes = [JSONParser]

    @extend_schema_serializer(component_name="DeadLettersReplayed")
    class OutputSerializer(serializers.Serializer):
        replayed = serializers.IntegerField(help_text="How many were put back on the queue.")

    @extend_schema(
        operation_id="messaging_dead_letters_replay_many",
        summary="Replay pending dead letters by id or by filter (staff)",
        description="Those that are not pending are skipped. Unknown ids refuse the whole request.",
        request=DeadLetterSelectionSerializer,
        parameters=[CONSUMER_PARAMETER],
        responses={200: OutputSerializer, **error_responses(400, 401, 403, 404), 503: BROKER_UNAVAILABLE_RESPONSE},
    )
    def post(self, request, consumer: str):
        letters = _selected_dead_letters(consumer, request.data)
        return Response(self.OutputSerializer({"replayed": _replay(consumer, letters)}).data)


class DeadLetterBulkDiscardApi(APIView):
    permission_classes = [IsAdminUser]
    parser_classes = [JSONParser]

    @extend_schema_serializer(component_name="DeadLettersDiscarded")
    class OutputSerializer(serializers.Serializer):
        discarded = serializers.IntegerField(help_text="How many were marked discarded.")

    @extend_schema(
        operation_id="messaging_dead_letters_discard_many",
        summary="Discard pending dead letters by id or by filter (staff)",
        description="Those that are not pending are skipped. Unknown ids refuse the whole request.",
        request=DeadLetterSelectionSerializer,
        parameters=[CONSUMER_PARAMETER],
        responses={200: OutputSerializer, **error_responses(400, 401, 403, 404)},
    )
    def post(self, request, consumer: str):
        letters = _selected_dead_letters(consumer, request.data)
        return Response(self.OutputSerializer({"discarded": dead_letters_discard(consumer=consumer, dead_letters=letters)}).data)


def _selected_dead_letters(consumer: str, data) -> list[DeadLetter]:
    _known_consumer(consumer)
    selection = DeadLetterSelectionSerializer(data=data)
    selection.is_valid(raise_exception=True)
    chosen = selection.validated_data
    if "ids" in chosen:
        try:
            return dead_letters_get_many(consumer=consumer, ids=chosen["ids"])
        except DeadLetter.DoesNotExist as error:
            raise ValidationError({"ids": [str(error)]}) from None
    return list(dead_letter_list(consumer=consumer, reason=chosen.get("reason"), event_type=chosen.get("type")))
