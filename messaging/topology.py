"""The broker topology: one topic exchange, one durable queue per subscriber, and what each binds.

Every process declares all of it at start (`topology_declare`). RabbitMQ needs that only once, but
the embedded broker routes in the publishing process, so each publisher must know every binding.
"""
from dataclasses import dataclass
from importlib import import_module

from kombu import Connection, Exchange, Queue

from messaging.events import EXCHANGE_NAME

EVENTS_EXCHANGE = Exchange(
    EXCHANGE_NAME,
    type="topic",
    durable=True,
    # An event no queue is bound for is not dropped silently: RabbitMQ hands it to this exchange.
    arguments={"alternate-exchange": f"{EXCHANGE_NAME}.unrouted"},
)
UNROUTED_EXCHANGE = Exchange(f"{EXCHANGE_NAME}.unrouted", type="fanout", durable=True)
UNROUTED_QUEUE = Queue(f"{EXCHANGE_NAME}.unrouted", exchange=UNROUTED_EXCHANGE, routing_key="", durable=True)
# Where RabbitMQ puts a message that exceeded a queue's delivery limit (a consumer died on it
# again and again); each consumer drains its own dead queue into its dead-letter store.
DEAD_LETTER_EXCHANGE = Exchange(f"{EXCHANGE_NAME}.dead", type="direct", durable=True)

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

    def queue(self) -> Queue:
        return Queue(
            self.queue_name,
            durable=True,
            queue_arguments={
                "x-queue-type": "quorum",
                "x-delivery-limit": QUEUE_DELIVERY_LIMIT,
                "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE.name,
                "x-dead-letter-routing-key": self.dead_queue_name,
            },
        )

    @property
    def dead_queue_name(self) -> str:
        return f"{self.queue_name}.dead"

    def dead_queue(self) -> Queue:
        return Queue(self.dead_queue_name, exchange=DEAD_LETTER_EXCHANGE, routing_key=self.dead_queue_name, durable=True)


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


def topology_declare(connection: Connection) -> None:
    """Declare the exchanges, every subscriber's queue and its bindings (idempotent)."""
    channel = connection.default_channel
    for exchange in (UNROUTED_EXCHANGE, EVENTS_EXCHANGE, DEAD_LETTER_EXCHANGE):
        exchange(channel).declare()
    UNROUTED_QUEUE(channel).declare()
    for subscription in SUBSCRIPTIONS.values():
        subscription.dead_queue()(channel).declare()
        queue = subscription.queue()(channel)
        queue.declare()
        for binding_key in subscription.bindings():
            queue.bind_to(exchange=EVENTS_EXCHANGE.name, routing_key=binding_key)
