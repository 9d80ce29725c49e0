"""The shop's REST API: one view per operation."""
