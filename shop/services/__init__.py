"""Every write the shop makes. Placing or cancelling an order records its event in the same transaction.

The parts: `orders` (placing and cancelling orders), `journey` (what the shop hears back about an
order). Import from here.
"""
from shop.services.journey import order_journey_record
from shop.services.orders import (
    MAX_LINES_PER_ORDER,
    MAX_QUANTITY_PER_LINE,
    SHOP_DATABASE,
    IdempotencyKeyReused,
    OrderItem,
    OrderRejected,
    OutOfStock,
    PlacedOrder,
    ShippingAddress,
    order_cancel,
    order_place,
)

__all__ = [
    "MAX_LINES_PER_ORDER",
    "MAX_QUANTITY_PER_LINE",
    "SHOP_DATABASE",
    "IdempotencyKeyReused",
    "OrderItem",
    "OrderRejected",
    "OutOfStock",
    "PlacedOrder",
    "ShippingAddress",
    "order_cancel",
    "order_journey_record",
    "order_place",
]
