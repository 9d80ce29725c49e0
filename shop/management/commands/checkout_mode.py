"""`python manage.py checkout_mode sync|async`: switch how checkout reaches shipping and loyalty."""
from django.core.management.base import BaseCommand

from shop.checkout import checkout_mode_get, checkout_mode_set
from shop.models import CheckoutTiming


class Command(BaseCommand):
    help = "Show or set the checkout mode: async (events, the default) or sync (HTTP calls inside the request)."

    def add_arguments(self, parser):
        parser.add_argument("mode", nargs="?", choices=CheckoutTiming.Mode.values, help="omit to show the current mode")

    def handle(self, *args, mode=None, **options):
        if mode:
            checkout_mode_set(mode=mode)
        self.stdout.write(f"checkout mode: {checkout_mode_get()}")
