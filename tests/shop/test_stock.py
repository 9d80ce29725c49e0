"""No oversell, by the stock update alone: two customers race for the last mug in two threads.

The embedded SQLite serialises whole write transactions (BEGIN IMMEDIATE), so any code, even an
unlocked read followed by an absolute write, would look safe on it. Here each thread's connection
behaves as PostgreSQL's READ COMMITTED does instead: reads take no lock (a deferred transaction on
the shared-cache test database with `read_uncommitted`) and a write sees the latest committed row.
A hook on the database cursor then forces the worst interleaving every time: both orders read the
stock before either writes, and the second writes only after the first committed. The row lock
(`select_for_update`) is a no-op on SQLite, so what is under test is the conditional update, which
must refuse to take stock that is no longer there.
"""
import threading

import pytest
from django.db import connections

from shop.models import Order, Product
from shop.services.orders import OrderItem, OutOfStock, ShippingAddress, order_place
from tests.factories import ProductFactory, UserFactory

WAIT_SECONDS = 10  # only reached if the interleaving cannot happen; then the test fails, it does not hang
ADDRESS = ShippingAddress(name="Ada Lovelace", line1="12 St James's Square", city="London", postal_code="SW1Y 4JH",
                          country="GB")


class Interleaving:
    """Both orders read the product, then the first writes and commits, then the second writes."""

    def __init__(self):
        self.both_read = threading.Barrier(2, timeout=WAIT_SECONDS)
        self.first_committed = threading.Event()

    def hook(self, *, first: bool):
        state = {"read": False, "wrote": False}

        def around_each_query(execute, sql, params, many, context):
            statement = sql.lstrip().upper()
            touches_products = '"SHOP_PRODUCT"' in statement
            if touches_products and statement.startswith("UPDATE") and not first and not state["wrote"]:
                state["wrote"] = True
                assert self.first_committed.wait(WAIT_SECONDS), "the first order never committed"
            result = execute(sql, params, many, context)
            if touches_products and statement.startswith("SELECT") and not state["read"]:
                state["read"] = True
                self.both_read.wait()
            return result

        return around_each_query


def read_committed_like_postgresql(alias: str = "default") -> None:
    """Give this thread's connection non-blocking reads that see other transactions' latest rows."""
    connection = connections[alias]
    connection.close()
    options = {**connection.settings_dict["OPTIONS"], "transaction_mode": "DEFERRED",
               "init_command": "PRAGMA read_uncommitted = 1;"}
    connection.settings_dict = {**connection.settings_dict, "OPTIONS": options}


def race_for(product: Product, customers) -> list:
    """Place one order per customer at once, interleaved as above; the result or exception of each."""
    interleaving = Interleaving()
    results = [None, None]

    def buy(index: int, customer):
        read_committed_like_postgresql()
        connection = connections["default"]
        try:
            with connection.execute_wrapper(interleaving.hook(first=index == 0)):
                results[index] = order_place(customer=customer, items=[OrderItem(sku=product.sku, quantity=1)],
                                             shipping_address=ADDRESS)
        except Exception as error:  # reported to the test, not lost in the thread
            results[index] = error
            interleaving.both_read.abort()
        finally:
            if index == 0:
                interleaving.first_committed.set()
            connection.close()

    threads = [threading.Thread(target=buy, args=(index, customer)) for index, customer in enumerate(customers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_SECONDS * 3)
    return results


@pytest.mark.django_db(transaction=True)
def test_two_customers_racing_for_the_last_mug_get_one_order_and_one_out_of_stock():
    mug = ProductFactory(sku="MUG-LAST", stock=1)

    first, second = race_for(mug, [UserFactory(), UserFactory()])

    assert not isinstance(first, Exception), first
    assert Order.objects.filter(lines__sku="MUG-LAST").count() == 1, "one mug in stock, sold twice"
    assert first.created and isinstance(second, OutOfStock), second
    mug.refresh_from_db()
    assert mug.stock == 0


@pytest.mark.django_db(transaction=True)
def test_two_customers_buying_the_last_two_mugs_at_once_both_get_one_and_none_are_left():
    mugs = ProductFactory(sku="MUG-TWO", stock=2)

    first, second = race_for(mugs, [UserFactory(), UserFactory()])

    assert not isinstance(first, Exception) and not isinstance(second, Exception), (first, second)
    mugs.refresh_from_db()
    assert mugs.stock == 0, "a sale overwrote the other's stock count"
