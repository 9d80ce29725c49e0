"""The consumer panel's controls: POST forms that pause or resume a consumer and replay or discard dead letters."""
from django.contrib import messages
from django.views.decorators.http import require_POST

from messaging.consumer_controls import (
    consumer_dead_letters_discard_all,
    consumer_dead_letters_replay_all,
    consumer_pause,
    consumer_resume,
)
from messaging.consumer_views.common import _back, _dead_letter, _known, staff_required
from messaging.dead_letters import BrokerUnavailable, dead_letters_discard, dead_letters_replay_if_broker_reachable
from messaging.topology import SUBSCRIPTIONS


@require_POST
@staff_required
def consumer_pause_view(request, consumer: str):
    subscription = SUBSCRIPTIONS[_known(consumer)]
    consumer_pause(consumer=consumer)
    messages.success(request, f"{consumer} is asked to pause: it cancels its subscription within about 5 s, and "
                              f"messages wait in {subscription.queue_name}.")
    return _back(request, consumer)


@require_POST
@staff_required
def consumer_resume_view(request, consumer: str):
    consumer_resume(consumer=_known(consumer))
    messages.success(request, f"{consumer} is asked to resume: it subscribes again within about 5 s.")
    return _back(request, consumer)


@require_POST
@staff_required
def dead_letter_replay(request, consumer: str, dead_letter_id: int):
    letter = _dead_letter(consumer, dead_letter_id)
    try:
        replayed = dead_letters_replay_if_broker_reachable(consumer=consumer, dead_letters=[letter])
    except BrokerUnavailable as error:
        messages.error(request, f"Dead letter {letter.pk} was not replayed: {error}")
        return _back(request, consumer)
    if replayed:
        messages.success(request, f"Replayed dead letter {letter.pk} to {SUBSCRIPTIONS[consumer].queue_name}.")
    else:
        messages.warning(request, f"Dead letter {letter.pk} is already {letter.status}; only pending ones are replayed.")
    return _back(request, consumer)


@require_POST
@staff_required
def dead_letter_discard(request, consumer: str, dead_letter_id: int):
    letter = _dead_letter(consumer, dead_letter_id)
    if dead_letters_discard(consumer=consumer, dead_letters=[letter]):
        messages.success(request, f"Discarded dead letter {letter.pk}.")
    else:
        letter.refresh_from_db()
        messages.warning(request, f"Dead letter {letter.pk} is already {letter.status}; only pending ones are discarded.")
    return _back(request, consumer)


@require_POST
@staff_required
def dead_letters_replay_all(request, consumer: str):
    try:
        replayed = consumer_dead_letters_replay_all(consumer=_known(consumer))
    except BrokerUnavailable as error:
        messages.error(request, f"Not all dead letters were replayed: {error}")
        return _back(request, consumer)
    messages.success(request, f"Replayed {_plural(replayed, 'dead letter')} to {SUBSCRIPTIONS[consumer].queue_name}.")
    return _back(request, consumer)


@require_POST
@staff_required
def dead_letters_discard_all(request, consumer: str):
    discarded = consumer_dead_letters_discard_all(consumer=_known(consumer))
    messages.success(request, f"Discarded {_plural(discarded, 'dead letter')}.")
    return _back(request, consumer)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
