"""`manage.py seed_demo`: demo products and users, and running it twice changes nothing."""
from io import StringIO

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command

from config.api_throttles import LOAD_TESTERS_GROUP
from shop.models import Product

pytestmark = pytest.mark.django_db


def seed_demo() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def snapshot():
    products = list(Product.objects.order_by("sku").values_list("sku", "name", "price", "stock", "description"))
    users = list(get_user_model().objects.order_by("username").values_list("username", "email", "password", "is_staff", "is_superuser"))
    return products, users


def test_seed_demo_creates_at_least_twelve_products_and_both_users():
    output = seed_demo()

    assert Product.objects.count() >= 12
    assert Product.objects.filter(price__gt=200).count() >= 2
    assert Product.objects.filter(stock__gt=0, stock__lte=3).exists()
    assert Product.objects.filter(sku="MUG-ENAMEL").exists()
    demo = get_user_model().objects.get(username="demo")
    staff = get_user_model().objects.get(username="staff")
    assert (demo.email, demo.is_staff, demo.is_superuser) == ("demo@example.com", False, False)
    assert (staff.email, staff.is_staff, staff.is_superuser) == ("staff@example.com", True, True)
    assert demo.check_password(settings.DEMO_PASSWORD) and staff.check_password(settings.DEMO_PASSWORD)
    assert "created" in output


def test_running_seed_demo_twice_changes_nothing():
    seed_demo()
    before = snapshot()

    output = seed_demo()

    assert snapshot() == before
    assert "0 created" in output and "already up to date" in output


def test_seed_demo_resets_the_demo_password_but_keeps_stock_sold_since():
    seed_demo()
    demo = get_user_model().objects.get(username="demo")
    demo.set_password("something-else")
    demo.save()
    Product.objects.filter(sku="MUG-ENAMEL").update(stock=1)

    seed_demo()

    assert get_user_model().objects.get(username="demo").check_password(settings.DEMO_PASSWORD)
    assert Product.objects.get(sku="MUG-ENAMEL").stock == 1


def test_seed_demo_makes_the_load_generators_user_a_load_tester():
    seed_demo()

    load_tester = get_user_model().objects.get(username="loadgen")
    assert load_tester.check_password(settings.DEMO_PASSWORD)
    assert not load_tester.is_staff
    assert list(load_tester.groups.values_list("name", flat=True)) == [LOAD_TESTERS_GROUP]
