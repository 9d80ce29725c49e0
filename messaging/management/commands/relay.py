"""`python manage.py relay`: publish outbox rows that were not published right after commit."""
from django.conf import settings
from django.core.management.base import BaseCommand

from messaging.relay import OutboxRelay


class Command(BaseCommand):
    help = "Sweep every service's outbox and publish unsent events, until SIGTERM or Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--database", action="append", dest="databases",
                            help="an outbox to sweep (repeatable); default: all of them")

    def handle(self, *args, databases=None, **options):
        OutboxRelay(databases or list(settings.DATABASES)).run()
