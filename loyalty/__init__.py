"""Loyalty: points for purchases, kept as a ledger, acting on the purchase event alone."""
