"""Shared messaging infrastructure: envelope, outbox and relay, topology, consumer runtime."""
