"""The shopping cart: {sku: quantity} in the session. Prices and stock are always read fresh."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from shop.models import Product
from shop.selectors import product_list
from shop.services import OrderItem


@dataclass(frozen=True)
class CartLine:
    product: Product
    quantity: int

    @property
    def line_total(self) -> Decimal:
        return self.product.price * self.quantity

    @property
    def exceeds_stock(self) -> bool:
        return self.quantity > self.product.stock


class Cart:
    """A small wrapper over `request.session`; a change marks the session modified so it is saved."""

    SESSION_KEY = "cart"

    def __init__(self, session):
        self.session = session
        self._quantities: dict[str, int] = dict(session.get(self.SESSION_KEY, {}))

    def __len__(self) -> int:
        return sum(self._quantities.values())

    def __contains__(self, sku: str) -> bool:
        return sku in self._quantities

    def quantity_of(self, sku: str) -> int:
        return self._quantities.get(sku, 0)

    def add(self, sku: str, quantity: int) -> None:
        self.set(sku, self.quantity_of(sku) + quantity)

    def set(self, sku: str, quantity: int) -> None:
        if quantity > 0:
            self._quantities[sku] = quantity
        else:
            self._quantities.pop(sku, None)
        self._save()

    def remove(self, sku: str) -> None:
        self.set(sku, 0)

    def clear(self) -> None:
        self._quantities = {}
        self._save()

    def lines(self) -> list[CartLine]:
        """The cart's lines in catalog order; SKUs no longer sold are dropped from the cart."""
        products = list(product_list().filter(sku__in=self._quantities))
        gone = set(self._quantities) - {product.sku for product in products}
        if gone:
            for sku in gone:
                del self._quantities[sku]
            self._save()
        return [CartLine(product=product, quantity=self._quantities[product.sku]) for product in products]

    def order_items(self) -> list[OrderItem]:
        return [OrderItem(sku=sku, quantity=quantity) for sku, quantity in sorted(self._quantities.items())]

    @staticmethod
    def total(lines: list[CartLine]) -> Decimal:
        return sum((line.line_total for line in lines), Decimal("0.00"))

    def _save(self) -> None:
        self.session[self.SESSION_KEY] = self._quantities
        self.session.modified = True
