"""`python manage.py fault shipping --fail-share 0.3`: inject faults into a running consumer."""
from django.core.management.base import BaseCommand

from messaging.operations import consumer_faults_clear, consumer_faults_update
from messaging.topology import SUBSCRIPTIONS


class Command(BaseCommand):
    help = "Show or set the faults a consumer injects (it picks them up within a heartbeat, ~5 s)."

    def add_arguments(self, parser):
        parser.add_argument("consumer", choices=sorted(SUBSCRIPTIONS))
        parser.add_argument("--fail-share", type=float, help="fail this share (0-1) of messages, transiently")
        parser.add_argument("--fail-first-attempts", type=int, help="fail every message's first N attempts")
        parser.add_argument("--slow-ms", type=int, help="sleep this long in every handler call")
        parser.add_argument("--duplicate-share", type=float, help="handle this share (0-1) of messages twice")
        parser.add_argument("--reorder-window", type=int, help="hold N messages and handle them newest first")
        parser.add_argument("--crash-after-commit", action="store_true", help="SIGKILL itself once, after a commit, before the ack")
        parser.add_argument("--clear", action="store_true", help="remove every fault")

    def handle(self, *args, consumer, clear, **options):
        if clear:
            consumer_faults_clear(consumer=consumer)
        changes = {name: options[name] for name in ("fail_share", "fail_first_attempts", "slow_ms", "duplicate_share",
                                                      "reorder_window") if options[name] is not None}
        if options["crash_after_commit"]:
            changes["crash_after_commit"] = True
        plan = consumer_faults_update(consumer=consumer, **changes)
        self.stdout.write(f"{consumer}: {plan.to_dict() if plan.active else 'no faults'}")
