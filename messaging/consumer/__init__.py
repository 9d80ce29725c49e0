"""The consumer runtime: `delivery` (a message as received), `processing` (what happens to one
message), `runtime` (the consume loop). Import from here."""
from messaging.consumer.delivery import TRANSIENT_ERRORS, Delivery, TransientError
from messaging.consumer.processing import MessageProcessor
from messaging.consumer.runtime import EventConsumer

__all__ = ["TRANSIENT_ERRORS", "Delivery", "EventConsumer", "MessageProcessor", "TransientError"]
