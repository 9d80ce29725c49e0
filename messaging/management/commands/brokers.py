"""`manage.py brokers compare`: the broker comparison (bench/comparison/); `brokers docs`: rebuild its docs section."""
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Compare the brokers on Eventshop's own workload (compare), or rebuild docs/brokers.md's Measured section (docs)."

    def add_arguments(self, parser):
        from bench.comparison.cli import add_compare_arguments

        commands = parser.add_subparsers(dest="action", required=True)
        compare = commands.add_parser("compare", help="run the comparison and write var/brokers-comparison.json")
        add_compare_arguments(compare)
        commands.add_parser("docs", help="rebuild the Measured section of docs/brokers.md from docs/brokers-comparison.json")

    def handle(self, *args, action, **options):
        if action == "docs":
            from bench.comparison.report import write_docs

            write_docs()
            return
        from argparse import Namespace

        from bench.comparison.cli import compare_from_options
        from messaging.transport import register_transport_alias

        register_transport_alias()
        compare_from_options(Namespace(**options), var_dir=Path(settings.VAR_DIR), out=self.stdout)
