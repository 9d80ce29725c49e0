"""The broker comparison: one workload on the embedded default, RabbitMQ, ActiveMQ and SQS (emulated).

`runner` runs it and writes the JSON, `measures` holds the measurements, `setups` the fresh
deployment per broker and the broker's own process, `progress` the progress bars, `report` the
docs' "Measured" section built from the JSON. Entry points: `manage.py brokers compare` and
`bench/brokers.py`.
"""
from bench.comparison.runner import DOCS_COPY, PROGRESS_NAME, RESULTS_NAME, Load, run_comparison
from bench.comparison.setups import BROKERS

__all__ = ["BROKERS", "DOCS_COPY", "PROGRESS_NAME", "RESULTS_NAME", "Load", "run_comparison"]
