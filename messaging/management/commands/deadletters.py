"""`python manage.py deadletters list|show|replay|discard <consumer>`: look at dead letters and resolve them."""
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from messaging.dead_letters import (
    BrokerUnavailable,
    dead_letter_get,
    dead_letter_list,
    dead_letters_discard,
    dead_letters_get_many,
    dead_letters_replay_if_broker_reachable,
)
from messaging.models import DeadLetter
from messaging.topology import SUBSCRIPTIONS

STATUSES = [*DeadLetter.Status.values, "all"]
HEX_PREVIEW_BYTES = 64  # enough to recognise a format (magic bytes, a BOM) without flooding the terminal


class Command(BaseCommand):
    help = "List, show, replay or discard the messages a consumer gave up on."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="list|show|replay|discard")

        listing = actions.add_parser("list", help="a table of dead letters, newest first")
        _consumer_argument(listing)
        listing.add_argument("--status", choices=STATUSES, default=DeadLetter.Status.PENDING,
                             help="default: pending")
        _filter_arguments(listing)
        listing.add_argument("--limit", type=int, default=50, help="at most this many rows (default 50)")

        show = actions.add_parser("show", help="every field of one dead letter, its headers and its body")
        _consumer_argument(show)
        show.add_argument("id", type=int)

        for action, verb in (("replay", "put back on the consumer's queue, unchanged"), ("discard", "mark as discarded")):
            resolve = actions.add_parser(action, help=f"{verb}: pending dead letters, by id or --all")
            _consumer_argument(resolve)
            resolve.add_argument("ids", type=int, nargs="*", metavar="ID")
            resolve.add_argument("--all", action="store_true", help="every pending one (narrow with --reason/--type)")
            _filter_arguments(resolve)

    def handle(self, *args, action, consumer, **options):
        if consumer not in SUBSCRIPTIONS:
            raise CommandError(f"unknown consumer {consumer!r}; choose one of {', '.join(SUBSCRIPTIONS)}")
        if action == "list":
            if options["limit"] < 1:
                raise CommandError("--limit must be at least 1")
            self.print_table(consumer, status=options["status"], reason=options["reason"], event_type=options["type"],
                             limit=options["limit"])
        elif action == "show":
            self.print_letter(consumer, options["id"])
        else:
            letters = self.selected(consumer, ids=options["ids"], all_pending=options["all"], reason=options["reason"],
                                    event_type=options["type"])
            self.resolve(action, consumer, letters)

    def print_table(self, consumer: str, *, status: str, reason: str | None, event_type: str | None, limit: int) -> None:
        letters = dead_letter_list(consumer=consumer, status=None if status == "all" else status,
                                   reason=reason, event_type=event_type)
        total = letters.count()
        rows = [
            (str(letter.pk), timezone.localtime(letter.created_at).strftime("%Y-%m-%d %H:%M:%S"), letter.reason,
             letter.event_type or "-", letter.subject or "-", str(letter.attempts), letter.status)
            for letter in letters[:limit]
        ]
        if not rows:
            self.stdout.write(f"No {'' if status == 'all' else status + ' '}dead letters for {consumer}.")
            return
        table = [("ID", "CREATED", "REASON", "EVENT TYPE", "SUBJECT", "ATTEMPTS", "STATUS"), *rows]
        widths = [max(len(row[column]) for row in table) for column in range(len(table[0]))]
        for row in table:
            self.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        if total > len(rows):
            self.stdout.write(f"({len(rows)} of {total} shown; raise --limit to see more)")

    def print_letter(self, consumer: str, dead_letter_id: int) -> None:
        letter = self.get(consumer, dead_letter_id)
        fields = [
            ("id", letter.pk), ("consumer", letter.consumer), ("status", letter.status),
            ("reason", letter.reason), ("event id", letter.event_id or "-"), ("event type", letter.event_type or "-"),
            ("subject", letter.subject or "-"), ("attempts", letter.attempts), ("created at", letter.created_at.isoformat()),
            ("resolved at", letter.resolved_at.isoformat() if letter.resolved_at else "-"),
            ("routing key", letter.routing_key or "-"), ("content type", letter.content_type or "-"),
        ]
        width = max(len(name) for name, _ in fields)
        for name, value in fields:
            self.stdout.write(f"{name.ljust(width)}  {value}")
        self.stdout.write("\ndetail:")
        self.stdout.write(_indented(letter.detail or "-"))
        self.stdout.write("\nheaders:")
        self.stdout.write(_indented("\n".join(f"{key}: {value}" for key, value in sorted(letter.headers.items())) or "-"))
        body = bytes(letter.body)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            preview = body[:HEX_PREVIEW_BYTES].hex(" ") + (" ..." if len(body) > HEX_PREVIEW_BYTES else "")
            self.stdout.write(f"\nbody: (binary, {len(body)} bytes, not valid UTF-8)")
            self.stdout.write(_indented(f"hex: {preview}"))
            self.stdout.write(_indented(f"as text, invalid bytes replaced: {letter.body_text()}"))
        else:
            self.stdout.write(f"\nbody ({len(body)} bytes):")
            self.stdout.write(_indented(text or "(empty)"))

    def selected(self, consumer: str, *, ids: list[int], all_pending: bool, reason: str | None,
                 event_type: str | None) -> list[DeadLetter]:
        if ids and all_pending:
            raise CommandError("give dead letter ids or --all, not both")
        if ids:
            if reason or event_type:
                raise CommandError("--reason and --type narrow --all; they do not apply to ids")
            try:
                return dead_letters_get_many(consumer=consumer, ids=ids)
            except DeadLetter.DoesNotExist as error:
                raise CommandError(str(error)) from None
        if not all_pending:
            raise CommandError("give the ids of the dead letters, or --all for every pending one")
        return list(dead_letter_list(consumer=consumer, reason=reason, event_type=event_type))

    def resolve(self, action: str, consumer: str, letters: list[DeadLetter]) -> None:
        not_pending = [letter for letter in letters if letter.status != DeadLetter.Status.PENDING]
        for letter in not_pending:
            self.stderr.write(f"skipped {letter.pk}: already {letter.status}")
        if action == "replay":
            try:
                count = dead_letters_replay_if_broker_reachable(consumer=consumer, dead_letters=letters)
            except BrokerUnavailable as error:
                raise CommandError(str(error)) from error
            self.stdout.write(f"Replayed {count} dead letter{'' if count == 1 else 's'} to {SUBSCRIPTIONS[consumer].queue_name}.")
        else:
            count = dead_letters_discard(consumer=consumer, dead_letters=letters)
            self.stdout.write(f"Discarded {count} dead letter{'' if count == 1 else 's'}.")

    def get(self, consumer: str, dead_letter_id: int) -> DeadLetter:
        try:
            return dead_letter_get(consumer=consumer, dead_letter_id=dead_letter_id)
        except DeadLetter.DoesNotExist:
            raise CommandError(f"no dead letter {dead_letter_id} for {consumer}") from None


def _consumer_argument(parser) -> None:
    parser.add_argument("consumer", help=f"one of {', '.join(SUBSCRIPTIONS)}")


def _filter_arguments(parser) -> None:
    parser.add_argument("--reason", help="only this reason, e.g. handler_error")
    parser.add_argument("--type", help="only this event type, e.g. shop.purchase.confirmed")


def _indented(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines() or [""])
