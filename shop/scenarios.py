"""Demo traffic for the operations view: orders placed by the `demo` customer, as a crowd would.

A traffic spike places many orders in a few seconds from a background thread, through the same
`order_place` as the checkout: the shop answers as fast as ever, the queues grow, and the consumers
drain them. It tops up the stock it is about to take first (it is a demo and should not sell the
catalogue out); an order that still finds no stock is skipped and counted.

Progress is kept in a runtime setting in `default`, so every web worker can report it.
"""
from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import connections, transaction
from django.db.models import F
from django.utils import timezone

from messaging.correlation import current_correlation_id
from messaging.runtime_settings import runtime_setting_get, runtime_setting_set
from shop.models import Order, Product
from shop.services import SHOP_DATABASE, OrderItem, OutOfStock, ShippingAddress, order_place

logger = logging.getLogger(__name__)

DEMO_CUSTOMER = "demo"
SCENARIO_PROGRESS = "scenario.progress"
PROGRESS_EVERY_SECONDS = 0.5  # often enough for a page polling every 2 s, rarely enough not to slow the orders
# Several countries, so the routing keys (shop.purchase.confirmed.<country>.<band>) vary.
ADDRESSES = [
    ShippingAddress(name="Ada Lovelace", line1="12 St James's Square", city="London", postal_code="SW1Y 4JH", country="GB"),
    ShippingAddress(name="Emmy Noether", line1="Bunsenstraße 3", city="Göttingen", postal_code="37073", country="DE"),
    ShippingAddress(name="Marie Curie", line1="11 rue Pierre et Marie Curie", city="Paris", postal_code="75005", country="FR"),
    ShippingAddress(name="Edsger Dijkstra", line1="Plantage Muidergracht 24", city="Amsterdam", postal_code="1018 TV", country="NL"),
]


class ScenarioAlreadyRunning(Exception):
    pass


@dataclass
class ScenarioProgress:
    name: str
    orders: int  # how many it means to place
    placed: int = 0
    skipped: int = 0  # out of stock
    running: bool = True
    started_at: str = ""
    finished_at: str = ""
    error: str = ""


_running_lock = threading.Lock()
_running: threading.Thread | None = None


def scenario_progress() -> ScenarioProgress | None:
    """The latest scenario's progress, whichever process runs it; None if none ever ran."""
    value = runtime_setting_get(key=SCENARIO_PROGRESS)
    return ScenarioProgress(**value) if value else None


def demo_customer() -> AbstractBaseUser:
    """The `demo` user (seed_demo creates it with the demo password; created here without one if missing)."""
    user, created = get_user_model().objects.db_manager(SHOP_DATABASE).get_or_create(
        username=DEMO_CUSTOMER, defaults={"email": "demo@example.com"})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def demo_orders_place(*, count: int, correlation_prefix: str = "demo") -> list[Order]:
    """Place `count` one-item orders now, as the demo customer; orders that find no stock are skipped."""
    customer = demo_customer()
    plan = _orders_plan(count)
    _stock_top_up(plan)
    orders = []
    for sku in plan:
        order = _order_place_one(customer, sku, correlation_prefix)
        if order is not None:
            orders.append(order)
    return orders


def traffic_spike_start(*, orders: int = 300, seconds: float = 10.0, name: str = "traffic_spike") -> threading.Thread:
    """Start placing `orders` orders evenly over `seconds` in a background thread, and return it.
    `name` says on the operations view what the orders are for (a spike, or orders during an outage)."""
    global _running
    if orders < 1 or seconds < 0:
        raise ValueError("a traffic spike needs at least one order and a duration of 0 s or more")
    with _running_lock:
        if _running is not None and _running.is_alive():
            raise ScenarioAlreadyRunning("a traffic spike is already running")
        customer = demo_customer()
        plan = _orders_plan(orders)
        _stock_top_up(plan)
        progress = ScenarioProgress(name=name, orders=orders, started_at=timezone.now().isoformat())
        _progress_save(progress)
        _running = threading.Thread(target=_traffic_spike_run, args=(customer, plan, seconds, progress),
                                    name="traffic-spike", daemon=True)
        _running.start()
        return _running


def _traffic_spike_run(customer, plan: list[str], seconds: float, progress: ScenarioProgress) -> None:
    started = time.monotonic()
    interval = seconds / len(plan)
    last_saved = started
    try:
        for index, sku in enumerate(plan):
            delay = started + index * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if _order_place_one(customer, sku, "spike") is None:
                progress.skipped += 1
            else:
                progress.placed += 1
            if time.monotonic() - last_saved >= PROGRESS_EVERY_SECONDS:
                _progress_save(progress)
                last_saved = time.monotonic()
    except Exception as error:  # a background thread has nobody to raise to: report it on the page
        logger.exception("traffic spike stopped")
        progress.error = f"{type(error).__name__}: {error}"[:500]
    finally:
        progress.running = False
        progress.finished_at = timezone.now().isoformat()
        _progress_save(progress)
        connections.close_all()  # this thread's own connections


def _order_place_one(customer, sku: str, correlation_prefix: str) -> Order | None:
    # Each order gets its own correlation id, as a request would: its journey can be followed.
    token = current_correlation_id.set(f"{correlation_prefix}-{uuid.uuid4().hex[:16]}")
    try:
        return order_place(customer=customer, items=[OrderItem(sku=sku, quantity=1)],
                           shipping_address=random.choice(ADDRESSES)).order
    except OutOfStock:
        return None
    finally:
        current_correlation_id.reset(token)


def _orders_plan(count: int) -> list[str]:
    """One sku per order, picked at random among the products in stock (all of them if none is)."""
    skus = list(Product.objects.filter(stock__gt=0).values_list("sku", flat=True)) or list(
        Product.objects.values_list("sku", flat=True))
    if not skus:
        raise ValueError("there are no products to order: run `manage.py seed_demo`")
    return random.choices(skus, k=count)


@transaction.atomic(using=SHOP_DATABASE)
def _stock_top_up(plan: list[str]) -> None:
    """Add the stock the plan will take, so a demo spike leaves the catalogue as it found it."""
    for sku, quantity in Counter(plan).items():
        Product.objects.filter(sku=sku).update(stock=F("stock") + quantity)


def _progress_save(progress: ScenarioProgress) -> None:
    runtime_setting_set(key=SCENARIO_PROGRESS, value=asdict(progress))
