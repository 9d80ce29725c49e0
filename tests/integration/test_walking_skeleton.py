"""A purchase flows from the shop through the topic to shipping and loyalty, and back to the shop.

Each test runs twice: on the embedded default (SQLite files and the SQLite broker) and on RabbitMQ +
PostgreSQL, with the real web, relay and consumer processes.
"""
import math
from decimal import Decimal

from tests.integration.stack import free_port, publish_raw, wait_until


def test_a_purchase_reaches_shipping_and_loyalty_and_the_shop_hears_back(stack):
    stack.start_all()

    order = stack.place_order()

    shipments = wait_until(lambda: stack.shipments(order["id"]), what="the shipment")
    assert len(shipments) == 1 and shipments[0]["order_number"] == order["number"]
    credits = wait_until(lambda: stack.points(order["id"]), what="the points")
    assert [(entry["kind"], entry["points"]) for entry in credits] == [("award", math.floor(Decimal(order["total"])))]
    heard_back = wait_until(lambda: (o := stack.order(order["id"]))["shipment_status"] == "created" and o["points_awarded"] and o,
                            what="the shop to hear from shipping and loyalty")
    assert heard_back["status"] == "fulfilled"
    assert heard_back["tracking_number"] == shipments[0]["tracking_number"]


def test_cancelling_an_order_cancels_the_shipment_and_reverses_the_points(stack):
    stack.start_all()
    order = stack.place_order()
    wait_until(lambda: stack.points(order["id"]), what="the points")

    response = stack.api("POST", f"/api/orders/{order['id']}/cancel/")

    assert response.status_code == 200, response.text
    wait_until(lambda: [s["status"] for s in stack.shipments(order["id"])] == ["cancelled"], what="the shipment to be cancelled")
    ledger = wait_until(lambda: len(stack.points(order["id"])) == 2 and stack.points(order["id"]), what="the reversal")
    assert sum(entry["points"] for entry in ledger) == 0


def test_delivering_the_same_purchase_event_twice_yields_one_shipment_and_one_credit(stack):
    stack.start_all()
    order = stack.place_order()
    wait_until(lambda: stack.shipments(order["id"]) and stack.points(order["id"]), what="the first delivery's effects")
    [(body, routing_key)] = stack.backend.sql(
        "default", "SELECT body, routing_key FROM messaging_outboxmessage WHERE subject = ? AND event_type = ?",
        (str(order["id"]), "shop.purchase.confirmed"))

    publish_raw(stack.backend.broker_url, body, routing_key)
    publish_raw(stack.backend.broker_url, body, routing_key)

    for alias, consumer in (("shipping", "shipping"), ("loyalty", "loyalty")):
        wait_until(lambda: stack.backend.sql(
            alias, "SELECT COUNT(*) FROM messaging_deliveryattempt WHERE consumer = ? AND outcome = 'duplicate'",
            (consumer,))[0][0] == 2, what=f"{consumer} to see both copies")
    assert len(stack.shipments(order["id"])) == 1
    assert len(stack.points(order["id"])) == 1


def test_stopping_loyalty_does_not_stop_orders_or_shipments_and_it_catches_up_when_it_returns(stack):
    for name in ("web", "relay", "shipping", "shop"):
        stack.start(name)

    orders = [stack.place_order() for _ in range(5)]

    for order in orders:
        wait_until(lambda: stack.shipments(order["id"]), what=f"the shipment of {order['number']}")
    assert all(stack.points(order["id"]) == [] for order in orders)

    stack.start("loyalty")

    for order in orders:
        wait_until(lambda: stack.points(order["id"]), what=f"loyalty to catch up on {order['number']}")


def test_an_event_the_web_process_could_not_publish_is_published_by_the_relay(stack):
    # The web process cannot reach any broker; the order still commits with its event in the outbox.
    stack.start("web", BROKER_URL=f"amqp://guest:guest@127.0.0.1:{free_port()}//")
    for name in ("relay", "shipping", "loyalty"):
        stack.start(name)

    order = stack.place_order()

    wait_until(lambda: stack.shipments(order["id"]), timeout=30, what="the relay to publish the swept event")
    wait_until(lambda: stack.points(order["id"]), what="the points")
