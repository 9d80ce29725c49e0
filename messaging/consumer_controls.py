"""What staff ask of a consumer from its dashboard panel: pause, resume, and every pending dead letter at once.

A pause is a row, not a signal: the consumer reads its `ConsumerState` at each heartbeat (every
~5 s), cancels its broker subscription while paused, and the messages wait in its queue.
"""
from django.db import transaction

from messaging.dead_letters import dead_letter_list, dead_letters_discard, dead_letters_replay_if_broker_reachable
from messaging.models import ConsumerState
from messaging.topology import SUBSCRIPTIONS


def consumer_pause(*, consumer: str) -> ConsumerState:
    return _consumer_paused_set(consumer=consumer, paused=True)


def consumer_resume(*, consumer: str) -> ConsumerState:
    """Resume now, ending an open-ended pause and a timed one (`paused_until`) alike."""
    return _consumer_paused_set(consumer=consumer, paused=False)


def _consumer_paused_set(*, consumer: str, paused: bool) -> ConsumerState:
    database = SUBSCRIPTIONS[consumer].database
    with transaction.atomic(using=database):
        state, _ = ConsumerState.objects.using(database).select_for_update().get_or_create(consumer=consumer)
        state.paused = paused
        state.paused_until = None
        state.save(using=database, update_fields=["paused", "paused_until"])
    return state


def consumer_dead_letters_replay_all(*, consumer: str) -> int:
    """Replay every pending dead letter of the consumer; raises BrokerUnavailable like a single replay."""
    return dead_letters_replay_if_broker_reachable(consumer=consumer, dead_letters=list(dead_letter_list(consumer=consumer)))


def consumer_dead_letters_discard_all(*, consumer: str) -> int:
    return dead_letters_discard(consumer=consumer, dead_letters=list(dead_letter_list(consumer=consumer)))
