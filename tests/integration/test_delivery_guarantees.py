"""At-least-once delivery, exactly-once effects: each guarantee proven against the real processes.

docs/guarantees.md explains each mechanism and links here.
"""
import math
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal

import requests
from kombu import Connection

from tests.integration.stack import publish_raw, queue_depth, wait_until

UNREACHABLE_BROKER = {"BROKER_URL": "amqp://guest:guest@127.0.0.1:1//"}


def attempts(stack, alias: str, consumer: str, outcome: str | None = None) -> list[tuple]:
    query = "SELECT event_id, attempt, outcome, created_at, worker FROM messaging_deliveryattempt WHERE consumer = ?"
    params = [consumer]
    if outcome:
        query += " AND outcome = ?"
        params.append(outcome)
    return stack.backend.sql(alias, query + " ORDER BY id", tuple(params))


def outbox_event(stack, order_id: int, event_type: str) -> tuple[str, str]:
    [(body, routing_key)] = stack.backend.sql(
        "default", "SELECT body, routing_key FROM messaging_outboxmessage WHERE subject = ? AND event_type = ?",
        (str(order_id), event_type))
    return body, routing_key


def as_datetime(value) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def wait_for_two_consumers_on_each_queue(stack) -> None:
    """RabbitMQ counts the consumers subscribed to a queue: wait until both processes listen."""
    def consumers_on(queue: str) -> int:
        return queue_depth(stack.backend.broker_url, queue)["consumers"] or 0  # None: not declared yet
    wait_until(lambda: consumers_on("shipping.events") == 2 and consumers_on("loyalty.events") == 2,
               what="two consumers on each queue")


# --- duplicates and requeues --------------------------------------------------------------------


def test_a_consumer_killed_between_commit_and_ack_gets_the_message_again_and_changes_nothing(stack):
    stack.env["BROKER_VISIBILITY_TIMEOUT_SECONDS"] = "2"  # the embedded broker's redelivery delay
    stack.manage("fault", "shipping", "--crash-after-commit")
    for name in ("web", "relay", "shipping"):
        stack.start(name)

    order = stack.place_order()

    assert stack.wait_for_exit("shipping") == -9  # SIGKILL: committed, never acked
    assert len(stack.shipments(order["id"])) == 1
    stack.start("shipping")
    wait_until(lambda: attempts(stack, "shipping", "shipping", "duplicate"), what="the redelivered copy")
    assert len(stack.shipments(order["id"])) == 1


def test_duplicates_delivered_to_two_competing_consumers_at_once_have_one_effect(rabbitmq_stack):
    stack = rabbitmq_stack
    for name in ("web", "relay", "shipping", "shipping#2", "loyalty", "loyalty#2"):  # prefetch 20 each
        stack.start(name)
    wait_for_two_consumers_on_each_queue(stack)

    orders = [stack.place_order() for _ in range(12)]
    for order in orders:  # two more copies of every purchase, right behind the original
        body, routing_key = outbox_event(stack, order["id"], "shop.purchase.confirmed")
        publish_raw(stack.backend.broker_url, body, routing_key)
        publish_raw(stack.backend.broker_url, body, routing_key)

    for consumer in ("shipping", "loyalty"):
        wait_until(lambda: len(attempts(stack, consumer, consumer)) >= 36, what=f"{consumer} to take all 36 messages")
        outcomes = [row[2] for row in attempts(stack, consumer, consumer)]
        assert (outcomes.count("applied"), outcomes.count("duplicate")) == (12, 24)
        # RabbitMQ deals a queue's messages round-robin: copies of one event reach both processes.
        assert len({row[4] for row in attempts(stack, consumer, consumer)}) == 2, "both processes took messages"
    for order in orders:
        assert len(stack.shipments(order["id"])) == 1
        assert len(stack.points(order["id"])) == 1


def test_a_purchase_and_its_cancellation_handled_at_once_by_competing_consumers_end_cancelled(rabbitmq_stack):
    stack = rabbitmq_stack
    stack.start("web", **UNREACHABLE_BROKER)  # the test publishes the events itself, in pairs
    orders = [stack.place_order() for _ in range(8)]
    for order in orders:
        assert stack.api("POST", f"/api/orders/{order['id']}/cancel/").status_code == 200
    for name in ("shipping", "shipping#2", "loyalty", "loyalty#2"):
        stack.start(name)
    wait_for_two_consumers_on_each_queue(stack)

    for order in orders:  # back to back: round-robin hands the two events to different processes
        publish_raw(stack.backend.broker_url, *outbox_event(stack, order["id"], "shop.purchase.confirmed"))
        publish_raw(stack.backend.broker_url, *outbox_event(stack, order["id"], "shop.order.cancelled"))

    for consumer in ("shipping", "loyalty"):
        wait_until(lambda: len({row[0] for row in attempts(stack, consumer, consumer)
                                if row[2] in ("applied", "early", "stale")}) == 16,
                   timeout=60, what=f"{consumer} to settle all 16 events")
    for order in orders:
        assert [s["status"] for s in stack.shipments(order["id"])] == ["cancelled"]
        assert sum(entry["points"] for entry in stack.points(order["id"])) == 0


def test_a_republished_copy_arriving_much_later_changes_nothing(stack):
    stack.start_all()
    order = stack.place_order()
    wait_until(lambda: stack.points(order["id"]), what="the points")
    # Age every inbox row by a day: the inbox keeps what it has seen for good, not for a window.
    for alias in ("shipping", "loyalty"):
        stack.backend.sql(alias, "UPDATE messaging_inboxmessage SET received_at = ?", ("2020-01-01 00:00:00+00:00",))

    publish_raw(stack.backend.broker_url, *outbox_event(stack, order["id"], "shop.purchase.confirmed"))

    wait_until(lambda: attempts(stack, "loyalty", "loyalty", "duplicate"), what="loyalty to see the late copy")
    wait_until(lambda: attempts(stack, "shipping", "shipping", "duplicate"), what="shipping to see the late copy")
    assert len(stack.points(order["id"])) == 1 and len(stack.shipments(order["id"])) == 1


# --- out-of-order events ------------------------------------------------------------------------


def test_a_cancellation_that_arrives_before_its_purchase_leaves_no_shipment_and_no_points(stack):
    # Nothing is published on commit (the web process has no broker) and no relay runs: we publish
    # the two events ourselves, in the wrong order.
    stack.start("web", **UNREACHABLE_BROKER)
    order = stack.place_order()
    assert stack.api("POST", f"/api/orders/{order['id']}/cancel/").status_code == 200
    purchase = outbox_event(stack, order["id"], "shop.purchase.confirmed")
    cancellation = outbox_event(stack, order["id"], "shop.order.cancelled")

    for name in ("shipping", "loyalty"):
        stack.start(name)
        wait_until(lambda: stack.backend.sql(name, "SELECT 1 FROM messaging_consumerstate"), what=f"{name} to start")

    publish_raw(stack.backend.broker_url, *cancellation)
    publish_raw(stack.backend.broker_url, *purchase)

    for consumer in ("shipping", "loyalty"):
        wait_until(lambda: len(attempts(stack, consumer, consumer)) == 2, what=f"{consumer} to take both events")
        assert [row[2] for row in attempts(stack, consumer, consumer)] == ["early", "stale"]
    [shipment] = stack.shipments(order["id"])
    assert shipment["status"] == "cancelled" and shipment["cancelled_before_purchase"]
    assert sum(entry["points"] for entry in stack.points(order["id"])) == 0


# --- race conditions ----------------------------------------------------------------------------


def test_concurrent_orders_never_oversell_the_stock(stack):
    stack.start("web")
    sku = stack.some_sku()
    stack.backend.sql("default", "UPDATE shop_product SET stock = 5 WHERE sku = ?", (sku,))
    stack.token("demo")

    def order_one():
        return stack.api("POST", "/api/orders/", json={
            "items": [{"sku": sku, "quantity": 1}],
            "shipping_address": {"name": "A", "line1": "B", "city": "C", "postal_code": "D", "country": "DE"}}).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(lambda _: order_one(), range(24)))

    assert sorted(statuses) == [201] * 5 + [409] * 19
    assert stack.backend.sql("default", "SELECT stock FROM shop_product WHERE sku = ?", (sku,)) == [(0,)]


# --- retries and poison messages ----------------------------------------------------------------


def test_a_transient_failure_is_retried_with_backoff_without_holding_up_the_messages_behind_it(stack):
    stack.env["CONSUMER_RETRY_BASE_SECONDS"] = "1"
    stack.manage("fault", "shipping", "--fail-first-attempts", "2")
    stack.start_all()

    orders = [stack.place_order() for _ in range(4)]

    for order in orders:
        wait_until(lambda: stack.shipments(order["id"]), timeout=60, what=f"{order['number']} to be applied")
    rows = attempts(stack, "shipping", "shipping")
    by_event = {}
    for event_id, attempt, outcome, created_at, _ in rows:
        by_event.setdefault(event_id, []).append((attempt, outcome, as_datetime(created_at)))
    assert len(by_event) == 4
    for history in by_event.values():
        assert [(attempt, outcome) for attempt, outcome, _ in history] == [(1, "retry"), (2, "retry"), (3, "applied")]
        first_wait = (history[1][2] - history[0][2]).total_seconds()
        second_wait = (history[2][2] - history[1][2]).total_seconds()
        assert first_wait >= 0.5 and second_wait >= 1.0, "exponential backoff with jitter: 0.5-1 s, then 1-2 s"
    first, *others = sorted(by_event.values(), key=lambda history: history[0][2])
    assert all(history[0][2] < first[-1][2] for history in others), "later messages went ahead while the first waited"


def test_after_the_last_attempt_the_message_is_dead_lettered_untouched_and_replay_applies_it(stack):
    stack.env["CONSUMER_MAX_ATTEMPTS"] = "3"
    stack.env["CONSUMER_RETRY_BASE_SECONDS"] = "0.3"
    stack.manage("fault", "shipping", "--fail-first-attempts", "99")
    stack.start_all()
    order = stack.place_order()

    letters = wait_until(lambda: stack.backend.sql(
        "shipping", "SELECT id, reason, attempts, body FROM messaging_deadletter WHERE consumer = 'shipping'"),
        timeout=30, what="the dead letter")

    [(letter_id, reason, attempt_count, body)] = letters
    assert (reason, attempt_count) == ("retries_exhausted", 3)
    assert bytes(body).decode() == outbox_event(stack, order["id"], "shop.purchase.confirmed")[0]
    assert stack.shipments(order["id"]) == []

    stack.manage("fault", "shipping", "--clear")
    heartbeat = "SELECT last_heartbeat_at FROM messaging_consumerstate WHERE consumer = 'shipping'"
    before = stack.backend.sql("shipping", heartbeat)
    # The consumer reads its faults with each heartbeat: wait for one after the clear.
    wait_until(lambda: stack.backend.sql("shipping", heartbeat) != before, timeout=15, what="a heartbeat")
    stack.manage("deadletters", "replay", "shipping", str(letter_id))
    wait_until(lambda: stack.shipments(order["id"]), timeout=20, what="the replayed purchase to be applied")


def test_a_poison_message_among_healthy_ones_is_dead_lettered_and_the_rest_flows_on(stack):
    stack.start_all()
    first = stack.place_order()

    publish_raw(stack.backend.broker_url, b"\x00\x01 this is not json", "shop.purchase.confirmed.DE.standard")
    second = stack.place_order()

    for order in (first, second):
        wait_until(lambda: stack.shipments(order["id"]) and stack.points(order["id"]), what="the healthy orders")
    for alias, consumer in (("shipping", "shipping"), ("loyalty", "loyalty")):
        letters = wait_until(lambda: stack.backend.sql(
            alias, "SELECT reason, body FROM messaging_deadletter WHERE consumer = ?", (consumer,)), what="the dead letter")
        assert [(reason, bytes(body)) for reason, body in letters] == [("not_json", b"\x00\x01 this is not json")]
        assert stack.is_running(consumer)


def test_an_event_no_queue_is_bound_for_is_kept_by_the_alternate_exchange(stack):
    stack.start("shipping")  # declares the topology
    wait_until(lambda: stack.backend.sql("shipping", "SELECT 1 FROM messaging_consumerstate"), what="shipping to start")

    publish_raw(stack.backend.broker_url, b'{"not": "for anyone"}', "warehouse.stock.counted",
                content_type="application/json")

    def unrouted_count():
        return queue_depth(stack.backend.broker_url, "shop.events.unrouted")["ready"]
    assert wait_until(unrouted_count, what="the unroutable event to be kept") == 1


# --- the three routing models -------------------------------------------------------------------


def test_two_workers_share_the_label_jobs_of_a_work_queue(stack):
    stack.env["SHIPPING_LABEL_EXTRA_SECONDS"] = "0.4"  # a slow label printer
    for name in ("web", "relay", "shipping", "worker#1", "worker#2"):
        stack.start(name)
    for worker in ("worker#1", "worker#2"):  # both must be listening before the jobs come
        wait_until(lambda: " ready." in stack.log(worker), timeout=60, what=f"{worker} to be ready")

    orders = [stack.place_order() for _ in range(6)]

    for order in orders:
        wait_until(lambda: (s := stack.shipments(order["id"])) and s[0]["label_url"], timeout=60,
                   what=f"the label of {order['number']}")
    workers = stack.backend.sql("shipping", "SELECT label_rendered_by, COUNT(*) FROM shipping_shipment GROUP BY label_rendered_by")
    assert len(workers) == 2, f"one worker did everything: {workers}"
    label = requests.get(stack.shipments(orders[0]["id"])[0]["label_url"], timeout=10)
    assert label.status_code == 200 and label.content.startswith(b"\x89PNG"), "the label image is served"
    # The job carried the order's correlation id through the work queue into the event it caused.
    by_event = dict(stack.backend.sql("shipping", "SELECT event_type, correlation_id FROM messaging_outboxmessage "
                                      "WHERE subject = ?", (str(orders[0]["id"]),)))
    assert by_event["shipping.label.rendered"] == by_event["shipping.shipment.created"] != ""


def test_only_large_orders_reach_the_bonus_subscriber(stack):
    stack.start_all()
    large = stack.place_order([{"sku": stack.some_sku(min_price=200), "quantity": 1}])
    standard = stack.place_order([{"sku": stack.some_sku(max_price=50), "quantity": 1}])

    ledger = wait_until(lambda: len(stack.points(large["id"])) == 2 and stack.points(large["id"]), what="award and bonus")
    total = Decimal(large["total"])
    assert sorted((entry["kind"], entry["points"]) for entry in ledger) == [
        ("award", math.floor(total)), ("bonus", math.floor(total / 10))]
    wait_until(lambda: stack.points(standard["id"]), what="the standard order's points")
    assert [entry["kind"] for entry in stack.points(standard["id"])] == ["award"]
    bonus_subjects = stack.backend.sql("loyalty", "SELECT subject FROM messaging_inboxmessage WHERE consumer = 'loyalty-bonus'")
    assert bonus_subjects == [(str(large["id"]),)]


def test_a_message_rabbitmq_dead_lettered_past_its_delivery_limit_lands_in_the_dead_letter_store(rabbitmq_stack):
    stack = rabbitmq_stack
    stack.start("shipping")
    wait_until(lambda: stack.backend.sql("shipping", "SELECT 1 FROM messaging_consumerstate"), what="shipping to start")

    # What the quorum queue's dead-letter exchange leaves in shipping.events.dead after the limit.
    with Connection(stack.backend.broker_url) as connection:
        connection.default_channel.basic_publish(
            connection.default_channel.prepare_message(
                b'{"crashed": "every consumer"}', content_type="application/cloudevents+json",
                headers={"x-first-death-reason": "delivery_limit", "x-first-death-queue": "shipping.events"}),
            exchange="", routing_key="shipping.events.dead")

    letters = wait_until(lambda: stack.backend.sql(
        "shipping", "SELECT reason, body FROM messaging_deadletter WHERE consumer = 'shipping'"), what="the dead letter")
    assert [(reason, bytes(body)) for reason, body in letters] == [("delivery_limit", b'{"crashed": "every consumer"}')]
