"""Shipping: one shipment per confirmed order, acting on the purchase event alone."""
