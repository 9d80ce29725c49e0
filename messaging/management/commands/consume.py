"""`python manage.py consume shipping`: run one subscriber's consumer as its own process."""
import logging

from django.core.management.base import BaseCommand, CommandError

from messaging.brokers import BrokerConfigurationError
from messaging.connecting import BrokerUnreachable
from messaging.consumer import EventConsumer
from messaging.topology import SUBSCRIPTIONS


class Command(BaseCommand):
    help = "Consume events for one subscriber (shipping, loyalty, shop) until SIGTERM or Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("subscriber", choices=sorted(SUBSCRIPTIONS))

    def handle(self, *args, subscriber, **options):
        if subscriber not in SUBSCRIPTIONS:
            raise CommandError(f"unknown subscriber {subscriber!r}")
        logging.getLogger(__name__).info("starting the %s consumer", subscriber)
        try:
            EventConsumer(SUBSCRIPTIONS[subscriber]).run()
        except (BrokerConfigurationError, BrokerUnreachable) as error:
            raise CommandError(str(error)) from None
