"""The options of `manage.py brokers compare` and `bench/brokers.py`, and what they run."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.comparison.runner import DOCS_COPY, RESULTS_NAME, Load, run_comparison
from bench.comparison.setups import BROKERS


def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--messages", type=int, default=None,
                        help="events per publish / consumer / kill measurement (default 1000; 30 with --quick)")
    parser.add_argument("--brokers", default=",".join(BROKERS),
                        help=f"a comma-separated subset of {','.join(BROKERS)} (default: all, in that order)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: a few dozen messages per broker, no broker restart")
    parser.add_argument("--no-restart", action="store_true",
                        help="do not restart the machine's RabbitMQ and ActiveMQ mid-run")
    parser.add_argument("--no-docs-copy", action="store_true",
                        help=f"write only var/{RESULTS_NAME}, not docs/{RESULTS_NAME} and docs/brokers.md")
    parser.add_argument("--steps", default="",
                        help="only these steps, comma-separated (latency, consumers_1, consumers_2, ordering_1, "
                             "ordering_2, ordering_option, kill, restart, publish, memory); default: all")
    parser.add_argument("--run-id", default=None, help="the run's id in the JSON (default: a fresh one)")


def compare_from_options(options, *, var_dir: Path, out=sys.stdout) -> dict:
    brokers = [name.strip() for name in options.brokers.split(",") if name.strip()]
    unknown = [name for name in brokers if name not in BROKERS]
    if unknown:
        raise SystemExit(f"unknown broker(s): {', '.join(unknown)}; choose from {', '.join(BROKERS)}")
    steps = tuple(step.strip() for step in options.steps.split(",") if step.strip())
    load = Load.for_options(messages=options.messages, quick=options.quick, restart=not options.no_restart, steps=steps)
    docs_copy = None if options.no_docs_copy else DOCS_COPY
    out.write(f"broker comparison: {', '.join(brokers)}; {load}\n")
    results = run_comparison(brokers=brokers, load=load, var_dir=var_dir, docs_copy=docs_copy,
                             run_id=options.run_id, out=out)
    out.write(f"results: {var_dir / RESULTS_NAME}\n")
    if docs_copy is not None:
        from bench.comparison.report import write_docs

        write_docs()
        out.write(f"and {docs_copy}, with the Measured section of docs/brokers.md regenerated\n")
    return results
