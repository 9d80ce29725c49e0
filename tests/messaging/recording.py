"""A message processor whose handlers only record what they were given: the tests of one
protection (inbox, sequence check, retries, delivery limit) then see the effect without any
business key behind the handler catching a repeat."""
import dataclasses

from messaging.consumer import MessageProcessor
from messaging.events import OrderCancelled, PurchaseConfirmed
from messaging.topology import SUBSCRIPTIONS


class RecordingProcessor(MessageProcessor):
    """Processes like shipping's consumer (same database), but each handled event is only appended to `handled`."""

    def __init__(self, *, name: str = "recording", ordered: bool = True, fail_with: Exception | None = None):
        super().__init__(dataclasses.replace(SUBSCRIPTIONS["shipping"], name=name, ordered=ordered))
        self.handled = []
        self.fail_with = fail_with
        self.handlers = {PurchaseConfirmed.type: self.record, OrderCancelled.type: self.record}

    def record(self, envelope):
        if self.fail_with is not None:
            raise self.fail_with
        self.handled.append((envelope.subject, envelope.sequence, envelope.id))
