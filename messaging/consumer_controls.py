"""What staff ask of a consumer from its dashboard panel: every pending dead letter at once.

Pause and resume are the operations view's services (messaging/operations.py), re-exported here for
the panel: a pause is a row, not a signal; the consumer reads its `ConsumerState` at each heartbeat
(every ~5 s), cancels its broker subscription while paused, and the messages wait in its queue.
"""
from messaging.dead_letters import dead_letter_list, dead_letters_discard, dead_letters_replay_if_broker_reachable
from messaging.operations import consumer_pause, consumer_resume

__all__ = ["consumer_dead_letters_discard_all", "consumer_dead_letters_replay_all", "consumer_pause", "consumer_resume"]


def consumer_dead_letters_replay_all(*, consumer: str) -> int:
    """Replay every pending dead letter of the consumer; raises BrokerUnavailable like a single replay."""
    return dead_letters_replay_if_broker_reachable(consumer=consumer, dead_letters=list(dead_letter_list(consumer=consumer)))


def consumer_dead_letters_discard_all(*, consumer: str) -> int:
    return dead_letters_discard(consumer=consumer, dead_letters=list(dead_letter_list(consumer=consumer)))
