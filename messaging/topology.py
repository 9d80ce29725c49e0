"""The topology in broker-neutral terms: the events topic, one queue per subscriber, what each binds.

Every process declares all of it at start, through the event-bus port (`messaging/brokers/`); each
adapter builds it with its own broker's means. The embedded broker routes in the publishing process,
so each publisher must know every binding.
"""
from dataclasses import dataclass
from importlib import import_module

from messaging.events import EXCHANGE_NAME

# Where an event no subscriber is bound for is kept, so it is noticed rather than dropped.
UNROUTED_QUEUE_NAME = f"{EXCHANGE_NAME}.unrouted"
# A message redelivered more often than this (consumer crashes, not handled failures) is dead-lettered.
QUEUE_DELIVERY_LIMIT = 10


@dataclass(frozen=True)
class Subscription:
    """One consumer: its name (also its inbox key), its queue, its database and its handlers."""

    name: str
    queue_name: str
    database: str
    # "module:NAME" of the dict that maps event type -> handler function.
    handlers_path: str
    # Binding keys; by default one `<type>.#` per handled event type.
    binding_keys: tuple[str, ...] = ()
    # Ordered subscribers skip events older than what they applied for the subject (their handlers
    # replace state); unordered ones apply every event once (their effects commute, e.g. a log).
    ordered: bool = True

    def handlers(self) -> dict:
        module, name = self.handlers_path.split(":")
        return getattr(import_module(module), name)

    def bindings(self) -> tuple[str, ...]:
        # `#` (zero or more words), not `*`: a routing key that is exactly the type must match too.
        return self.binding_keys or tuple(f"{event_type}.#" for event_type in self.handlers())

    @property
    def dead_queue_name(self) -> str:
        return f"{self.queue_name}.dead"


SUBSCRIPTIONS: dict[str, Subscription] = {
    subscription.name: subscription
    for subscription in (
        Subscription(name="shipping", queue_name="shipping.events", database="shipping",
                     handlers_path="shipping.handlers:HANDLERS"),
        Subscription(name="loyalty", queue_name="loyalty.events", database="loyalty",
                     handlers_path="loyalty.handlers:HANDLERS"),
        # Custom routing: only purchases of the "large" value band, whatever the country.
        Subscription(name="loyalty-bonus", queue_name="loyalty.large-orders", database="loyalty",
                     handlers_path="loyalty.handlers:LARGE_ORDER_HANDLERS",
                     binding_keys=("shop.purchase.confirmed.*.large",)),
        Subscription(name="shop", queue_name="shop.journey", database="default",
                     handlers_path="shop.handlers:HANDLERS", ordered=False),
    )
}


def all_queue_names() -> list[str]:
    """Every queue the event topology has, for the dashboards' depth charts."""
    names = [UNROUTED_QUEUE_NAME]
    for subscription in SUBSCRIPTIONS.values():
        names += [subscription.queue_name, subscription.dead_queue_name]
    return names


def event_bus_connect(*, connect_timeout: float = 5.0):
    """A bus to the configured broker with the whole topology declared (idempotent)."""
    from messaging.brokers import event_bus

    bus = event_bus(connect_timeout=connect_timeout)
    try:
        bus.declare(SUBSCRIPTIONS.values())
    except Exception:
        bus.close()
        raise
    return bus
