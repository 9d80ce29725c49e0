"""Service-to-service endpoint: a consumer applies one event handed to it over HTTP (the sync checkout).

`POST /internal/events/<consumer>/` with the CloudEvent as body (application/cloudevents+json) runs
the same consumer runtime as a broker delivery: the same inbox, sequence check, handlers and
dead letters, so an event delivered both ways is applied once. What differs is who retries: the
HTTP caller, so a transient failure answers 503 instead of being scheduled for later.

    200 {"outcome": "applied" | "early" | "stale" | "duplicate"}
    403 missing or wrong X-Internal-Token       404 unknown consumer
    422 dead-lettered (the event can never be handled; it is kept with its reason)
    503 the consumer is paused ("the service is down"), or a transient failure
"""
import hmac
import logging
import time

from django.conf import settings
from django.db import DatabaseError
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from messaging.consumer import Delivery, EventConsumer
from messaging.faults import consumer_faults_get
from messaging.models import ConsumerState, DeliveryOutcome
from messaging.topology import SUBSCRIPTIONS

logger = logging.getLogger(__name__)

INTERNAL_TOKEN_HEADER = "X-Internal-Token"
ROUTING_KEY_HEADER = "X-Routing-Key"  # the routing key the broker would have used: kept on a dead letter, for replay
APPLIED_OUTCOMES = {DeliveryOutcome.APPLIED, DeliveryOutcome.EARLY, DeliveryOutcome.STALE, DeliveryOutcome.DUPLICATE}


class CallerRetries(Exception):
    """A transient failure of a delivery made over HTTP: the caller's next request is the retry."""


class CallerRetriesScheduler:
    """Stands in for a subscription reader for HTTP deliveries: never schedules a retry, so nothing
    is retried twice (the caller's next request is the retry)."""

    def retry_later(self, delivery: Delivery, *, attempt: int, delay_seconds: float) -> None:
        raise CallerRetries(f"attempt {attempt} failed")


@csrf_exempt
@require_POST
def internal_event_apply(request, consumer: str):
    expected = settings.INTERNAL_API_TOKEN
    if not hmac.compare_digest(request.headers.get(INTERNAL_TOKEN_HEADER, "").encode(), str(expected).encode()):
        return JsonResponse({"detail": "a valid X-Internal-Token is required"}, status=403)
    subscription = SUBSCRIPTIONS.get(consumer)
    if subscription is None:
        return JsonResponse({"detail": f"no consumer {consumer!r}"}, status=404)
    if _consumer_paused(consumer):
        return JsonResponse({"detail": f"{consumer} is paused"}, status=503)

    # The configured "slow downstream" delay, here as in the consumer process, so both modes pay it.
    # (Only this fault: the others play with broker redelivery, which an HTTP call does not have.)
    slow_ms = consumer_faults_get(consumer=consumer).slow_ms
    if slow_ms:
        time.sleep(slow_ms / 1000)

    event_consumer = EventConsumer(subscription)
    event_consumer.worker = f"http {event_consumer.worker}"  # tells sync deliveries apart on the dashboard
    delivery = Delivery(body=request.body, content_type=request.content_type or "",
                        routing_key=request.headers.get(ROUTING_KEY_HEADER, ""), headers={})
    try:
        outcome = event_consumer.process(delivery, CallerRetriesScheduler())
    except CallerRetries as failure:
        cause = failure.__context__
        detail = f"{type(cause).__name__}: {cause}" if cause else str(failure)
        logger.warning("%s failed an HTTP delivery, transiently: %s", consumer, detail)
        return JsonResponse({"detail": f"transient failure, try again: {detail}"[:500], "outcome": "retry"}, status=503)
    except DatabaseError as error:  # not even the dead-letter store could be written
        logger.error("%s cannot reach its database: %s", consumer, error)
        return JsonResponse({"detail": f"{consumer}'s database is unavailable"}, status=503)
    if outcome in APPLIED_OUTCOMES:
        return JsonResponse({"outcome": outcome})
    if outcome == DeliveryOutcome.DEAD_LETTERED:
        return JsonResponse({"detail": "the event cannot be handled; it was dead-lettered", "outcome": outcome}, status=422)
    return JsonResponse({"detail": f"not applied ({outcome})", "outcome": outcome}, status=503)


def _consumer_paused(consumer: str) -> bool:
    state = ConsumerState.objects.using(SUBSCRIPTIONS[consumer].database).filter(consumer=consumer).first()
    return bool(state and state.is_paused)
