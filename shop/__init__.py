"""The shop: catalog, cart, checkout and orders. Publishes purchases; listens to how they go."""
