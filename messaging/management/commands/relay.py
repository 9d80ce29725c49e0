"""`python manage.py relay`: publish outbox rows that were not published right after commit."""
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from messaging.brokers import BrokerConfigurationError
from messaging.connecting import BrokerUnreachable
from messaging.relay import OutboxRelay


class Command(BaseCommand):
    help = "Sweep every service's outbox and publish unsent events, until SIGTERM or Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--database", action="append", dest="databases",
                            help="an outbox to sweep (repeatable); default: all of them")

    def handle(self, *args, databases=None, **options):
        try:
            OutboxRelay(databases or list(settings.DATABASES)).run()
        except (BrokerConfigurationError, BrokerUnreachable) as error:
            raise CommandError(str(error)) from None
