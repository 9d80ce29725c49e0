"""The broker comparison: the same workload on the embedded default, RabbitMQ, ActiveMQ and SQS (emulated).

    .venv/bin/python bench/brokers.py                          # all four, 1,000 messages, with a broker restart
    .venv/bin/python bench/brokers.py --quick --brokers embedded,rabbitmq
    .venv/bin/python bench/brokers.py --docs                   # rebuild docs/brokers.md's Measured section
    .venv/bin/python manage.py brokers compare ...             # the same run, as a management command

Writes var/brokers-comparison.json and docs/brokers-comparison.json (unless --no-docs-copy), and
regenerates the "Measured" section of docs/brokers.md from the latter. The workload is in
bench/comparison/ (measures.py says what each figure is).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    os.chdir(Path(__file__).resolve().parent.parent)
    import django

    django.setup()
    from messaging.transport import register_transport_alias

    register_transport_alias()


def main() -> None:
    _django()  # before the comparison's modules, which import the models
    from bench.comparison.cli import add_compare_arguments

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_compare_arguments(parser)
    parser.add_argument("--docs", action="store_true", help="only rebuild docs/brokers.md's Measured section")
    parser.add_argument("--child", choices=["publish"], help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child == "publish":
        from bench.comparison.measures import publish_child

        print(json.dumps(publish_child(options.messages)))
        return
    if options.docs:
        from bench.comparison.report import write_docs

        write_docs()
        return
    from django.conf import settings

    from bench.comparison.cli import compare_from_options

    compare_from_options(options, var_dir=Path(settings.VAR_DIR))


if __name__ == "__main__":
    main()
