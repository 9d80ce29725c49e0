"""The dead-letter API for staff: list what the consumers gave up on, look at it, replay it or discard it.

The parts: `dead_letters` (list, show, replay or discard one), `dead_letters_bulk` (replay or
discard many, by id or by filter). Import from here.
"""
from messaging.apis.dead_letters import (
    DeadLetterDetailApi,
    DeadLetterDiscardApi,
    DeadLetterListApi,
    DeadLetterReplayApi,
)
from messaging.apis.dead_letters_bulk import DeadLetterBulkDiscardApi, DeadLetterBulkReplayApi

__all__ = [
    "DeadLetterBulkDiscardApi",
    "DeadLetterBulkReplayApi",
    "DeadLetterDetailApi",
    "DeadLetterDiscardApi",
    "DeadLetterListApi",
    "DeadLetterReplayApi",
]
