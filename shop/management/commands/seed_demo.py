"""`python manage.py seed_demo`: demo products and the `demo`, `staff` and `loadgen` users. Safe to run again."""
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from config.api_throttles import LOAD_TESTERS_GROUP
from shop.models import Product

# Products and auth both live in the shop's database; nothing here touches shipping or loyalty.
DATABASE = "default"

# (sku, name, price in EUR, stock, description). Some cost over €200 so "large" orders exist;
# some have little stock so selling out is easy to show.
PRODUCTS = [
    ("MUG-ENAMEL", "Enamel camping mug", "12.50", 40,
     "A white enamel mug with a navy rim. Holds 350 ml, survives campfires and dishwashers alike."),
    ("TEE-ORGANIC", "Organic cotton T-shirt", "24.00", 60,
     "Heavyweight organic cotton, garment-dyed in Portugal. Relaxed fit, slate grey."),
    ("SOCKS-MERINO", "Merino hiking socks (2 pairs)", "19.90", 3,
     "Cushioned merino wool socks that keep feet dry on long walks. Sizes 39 to 46."),
    ("NOTEBOOK-A5", "A5 dotted notebook", "14.00", 120,
     "192 pages of 100 gsm ivory paper with a 5 mm dot grid, lay-flat binding and a linen cover."),
    ("PEN-BRASS", "Solid brass pen", "38.00", 25,
     "A machined brass pen that ages to a warm patina. Takes standard Parker-style refills."),
    ("BOTTLE-STEEL", "Insulated steel bottle, 750 ml", "29.90", 35,
     "Double-walled stainless steel keeps drinks cold for 24 hours or hot for 12. Leak-proof lid."),
    ("LAMP-DESK", "Oak desk lamp", "89.00", 12,
     "A solid oak base with a dimmable warm-white LED head. USB-C powered, cable included."),
    ("BACKPACK-ROLLTOP", "Waxed canvas roll-top backpack", "149.00", 8,
     "Waterproof waxed canvas with leather straps and a padded 15-inch laptop sleeve. 22 litres."),
    ("HEADPHONES-ANC", "Noise-cancelling headphones", "249.00", 5,
     "Over-ear wireless headphones with adaptive noise cancelling and 30 hours of battery life."),
    ("KETTLE-GOOSENECK", "Gooseneck pour-over kettle", "64.00", 3,
     "A 1-litre electric kettle with precise temperature control for pour-over coffee and tea."),
    ("GRINDER-BURR", "Conical burr coffee grinder", "219.00", 6,
     "Steel conical burrs and 40 grind settings, from espresso fine to French press coarse."),
    ("CHAIR-ERGONOMIC", "Ergonomic office chair", "429.00", 4,
     "Adjustable lumbar support, 4D armrests and a breathable mesh back. Five-year warranty."),
    ("PLANT-POT", "Terracotta plant pot with saucer", "16.50", 0,
     "Hand-thrown terracotta, 18 cm across. Back in stock soon."),
    ("BLANKET-WOOL", "Lambswool throw blanket", "79.00", 15,
     "A soft herringbone throw woven in Wales from pure lambswool. 130 × 180 cm."),
]

USERS = [
    # (username, email, is_staff and is_superuser)
    ("demo", "demo@example.com", False),
    ("staff", "staff@example.com", True),
    ("loadgen", "loadgen@example.com", False),
]
# `manage.py loadgen` logs in as this user: a load tester, so its orders are not throttled.
LOAD_TESTER = "loadgen"


class Command(BaseCommand):
    help = "Create the demo products and the `demo`, `staff` and `loadgen` users; running it again changes nothing."

    @transaction.atomic(using=DATABASE)
    def handle(self, *args, **options):
        self._seed_products()
        for username, email, is_admin in USERS:
            self._seed_user(username, email, is_admin)

    def _seed_products(self) -> None:
        created = 0
        for sku, name, price, stock, description in PRODUCTS:
            # Existing products are left alone: their stock reflects orders placed since the last run.
            _, was_created = Product.objects.using(DATABASE).get_or_create(
                sku=sku, defaults={"name": name, "price": Decimal(price), "stock": stock, "description": description}
            )
            created += was_created
        self.stdout.write(f"Products: {created} created, {len(PRODUCTS) - created} already there.")

    def _seed_user(self, username: str, email: str, is_admin: bool) -> None:
        User = get_user_model()
        user, created = User.objects.db_manager(DATABASE).get_or_create(username=username)
        wanted = {"email": email, "is_staff": is_admin, "is_superuser": is_admin, "is_active": True}
        changed = [name for name, value in wanted.items() if getattr(user, name) != value]
        for name in changed:
            setattr(user, name, wanted[name])
        # Compare rather than always set: a fresh hash (new salt) would be a change on every run.
        if not user.check_password(settings.DEMO_PASSWORD):
            user.set_password(settings.DEMO_PASSWORD)
            changed.append("password")
        if changed:
            user.save(using=DATABASE)
        if username == LOAD_TESTER and not user.groups.filter(name=LOAD_TESTERS_GROUP).exists():
            user.groups.add(Group.objects.db_manager(DATABASE).get_or_create(name=LOAD_TESTERS_GROUP)[0])
            changed.append(f"group {LOAD_TESTERS_GROUP}")
        role = "staff and superuser" if is_admin else "load tester" if username == LOAD_TESTER else "customer"
        if created:
            self.stdout.write(f"User {username} ({role}): created with the demo password.")
        elif changed:
            self.stdout.write(f"User {username} ({role}): reset {', '.join(changed)}.")
        else:
            self.stdout.write(f"User {username} ({role}): already up to date.")
