"""`python manage.py migrate_all`: migrate every service's database (each has its own alias)."""
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run migrate for every database alias: the shop's, shipping's and loyalty's."

    def handle(self, *args, **options):
        for alias in settings.DATABASES:
            self.stdout.write(f"Migrating database '{alias}'")
            call_command("migrate", database=alias, interactive=False, verbosity=options["verbosity"] - 1 if options["verbosity"] else 0)
