"""RabbitMQ through kombu / py-amqp: quorum queues with a delivery limit, publisher confirms, an
alternate exchange for unrouted events, and delay queues (TTL + dead-lettering) for retries.

`?single_active_consumer=1` in BROKER_URL declares the subscriber queues with
`x-single-active-consumer`: one consumer at a time gets a queue's messages, in order, and a
competing process stands by. RabbitMQ refuses to redeclare an existing queue with other arguments,
so the option is for a fresh vhost (the broker comparison's ordering runs).
"""
from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

from kombu import Producer, Queue

from messaging.brokers.base import Capabilities, Delivery
from messaging.brokers.kombu_bus import DEAD_LETTER_EXCHANGE, DEFAULT_EXCHANGE, KombuBus, KombuReader, retry_headers
from messaging.topology import QUEUE_DELIVERY_LIMIT, Subscription

# Delay queues by power of two: a message waits in the one matching its delay, so a short delay
# never queues behind a long one (RabbitMQ expires messages only at the head of a queue).
DELAY_LEVELS_SECONDS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class RabbitMQBus(KombuBus):
    HEARTBEAT_SECONDS = 30
    PIPELINED_CONFIRMS = True

    def __init__(self, url: str, *, connect_timeout: float = 5.0):
        # Our option comes off the URL before kombu reads it.
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        option = [value for key, value in query if key == "single_active_consumer"]
        self.single_active_consumer = bool(option) and option[-1].lower() in {"1", "true", "yes"}
        rest = urlencode([(key, value) for key, value in query if key != "single_active_consumer"])
        super().__init__(parts._replace(query=rest).geturl(), connect_timeout=connect_timeout)

    capabilities = Capabilities(
        name="RabbitMQ",
        publish_confirmation="publisher confirms, pipelined: a batch is published, then all its acks awaited; each message is acked once on disk in the quorum queues",
        pub_sub="a topic exchange, one durable queue per subscriber",
        pattern_routing="AMQP topic bindings on the routing key (`*` one word, `#` any number)",
        delivery_count="exact: quorum queues set `x-delivery-count` on each redelivery",
        delivery_limit=f"native: quorum queue `x-delivery-limit` ({QUEUE_DELIVERY_LIMIT}), then dead-lettered",
        dead_letters="native: a dead-letter exchange to a dead queue per subscriber; Eventshop moves them into its store",
        delayed_delivery="no native delay: per-level delay queues whose TTL dead-letters back into the queue",
        per_key_ordering="per queue, for one consumer; with `?single_active_consumer=1`, one consumer at a time takes a "
                         "queue (the others stand by), so order holds with competing processes",
        unrouted_events="native: an alternate exchange keeps them in `shop.events.unrouted`",
        priorities="native priority queues (classic queues only; not used)",
        high_availability="quorum queues replicate across a cluster's nodes (Raft)",
        consumer_count=True,
    )

    def transport_options(self) -> dict:
        return {"confirm_publish": True}

    def subscriber_queue(self, subscription: Subscription) -> Queue:
        return Queue(
            subscription.queue_name,
            durable=True,
            queue_arguments={
                "x-queue-type": "quorum",
                "x-delivery-limit": QUEUE_DELIVERY_LIMIT,
                "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE.name,
                "x-dead-letter-routing-key": subscription.dead_queue_name,
                **({"x-single-active-consumer": True} if self.single_active_consumer else {}),
            },
        )

    def declare_extra(self, subscription: Subscription, channel) -> None:
        for level in DELAY_LEVELS_SECONDS:
            delay_queue(subscription, level)(channel).declare()

    def send_retry(self, producer: Producer, reader: KombuReader, delivery: Delivery, *, attempt: int,
                   delay_seconds: float) -> None:
        level = next((level for level in DELAY_LEVELS_SECONDS if level >= delay_seconds), DELAY_LEVELS_SECONDS[-1])
        producer.publish(
            delivery.body,
            exchange=DEFAULT_EXCHANGE,
            routing_key=delay_queue(reader.subscription, level).name,
            content_type=delivery.content_type,
            content_encoding="utf-8",
            delivery_mode=2,
            headers=retry_headers(delivery, attempt),
            # Jitter within the level; the queue's TTL is the upper bound.
            expiration=max(delay_seconds, 0.001),
            retry=False,
        )

    def consumer_count(self, declared) -> int | None:
        return declared.consumer_count


def delay_queue(subscription: Subscription, level_seconds: int) -> Queue:
    return Queue(
        f"{subscription.queue_name}.retry.{level_seconds}s",
        durable=True,
        queue_arguments={
            # Expired messages go back, through the default exchange, to the consumer's queue.
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": subscription.queue_name,
            "x-message-ttl": level_seconds * 1000,
        },
    )
