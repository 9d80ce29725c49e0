"""The shop's HTML pages, driven through the Django test client as a browser would."""
import re
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from django.conf import settings
from django.db import transaction
from django.urls import reverse

from messaging.events import Envelope, PointsAwarded, ShipmentCreated, ShippingLabelRendered
from shop.handlers import order_note_label_rendered, order_note_points_awarded, order_note_shipment_created
from shop.models import Order, Product
from shop.services import OrderItem, ShippingAddress, order_place
from tests.factories import ProductFactory, UserFactory

pytestmark = pytest.mark.django_db


def add_to_cart(client, sku, quantity):
    return client.post(reverse("shop:cart_add", args=[sku]), {"quantity": quantity})


def checkout_form(client, address):
    """GET the checkout page and return the form data a browser would submit, token included."""
    response = client.get(reverse("shop:checkout"))
    assert response.status_code == 200
    token = re.search(r'name="idempotency_key" value="([^"]+)"', response.content.decode()).group(1)
    return {**address, "idempotency_key": token}


def place_order(customer, product, address, quantity=1) -> Order:
    return order_place(
        customer=customer, items=[OrderItem(product.sku, quantity)], shipping_address=ShippingAddress(**address)
    ).order


def envelope_for(event) -> Envelope:
    return Envelope(event=event, sequence=1, id=uuid.uuid4(), time=datetime.now(timezone.utc))


# --- catalog, product, cart ----------------------------------------------------------------------


def test_catalog_lists_products_with_prices_and_stock(client, product):
    ProductFactory(sku="LAMP-01", name="Desk lamp", price="1299.00", stock=0)

    html = client.get(reverse("shop:catalog")).content.decode()

    assert "Enamel mug" in html and "€12.50" in html and "10 left" in html
    assert "Desk lamp" in html and "€1,299.00" in html and "sold out" in html
    assert reverse("shop:product", args=["MUG-01"]) in html


def test_product_page_shows_description_price_and_an_add_to_cart_form(client, product):
    html = client.get(reverse("shop:product", args=[product.sku])).content.decode()

    assert "A fine thing." in html and "€12.50" in html
    assert f'action="{reverse("shop:cart_add", args=[product.sku])}"' in html


def test_unknown_product_page_is_404(client, db):
    assert client.get(reverse("shop:product", args=["NOPE"])).status_code == 404


def test_adding_to_cart_shows_the_line_the_total_and_the_header_count(client, product):
    response = add_to_cart(client, product.sku, 2)

    assert response.status_code == 302
    html = client.get(reverse("shop:cart")).content.decode()
    assert "Enamel mug" in html
    assert "€25.00" in html
    assert "Cart <span class=\"count\" data-cart-count>(2)</span>" in html


def test_adding_more_than_the_stock_leaves_the_cart_unchanged_and_says_how_many_are_left(client, db):
    ProductFactory(sku="SOCKS", name="Wool socks", stock=3)

    response = add_to_cart(client, "SOCKS", 4)

    assert response.status_code == 302
    html = client.get(response.url).content.decode()
    assert "Only 3 of Wool socks left" in html
    assert client.session.get("cart", {}) == {}


def test_updating_the_cart_changes_quantities_and_removes_lines(client, product):
    ProductFactory(sku="PEN-01", name="Brass pen", price="38.00")
    add_to_cart(client, product.sku, 1)
    add_to_cart(client, "PEN-01", 1)
    client.get(reverse("shop:cart"))  # shows (and so clears) the "added" messages

    client.post(reverse("shop:cart_update"), {f"qty-{product.sku}": 3, "qty-PEN-01": 1})
    assert client.session["cart"] == {product.sku: 3, "PEN-01": 1}

    html = client.post(
        reverse("shop:cart_update"), {f"qty-{product.sku}": 3, "qty-PEN-01": 1, "remove": "PEN-01"}, follow=True
    ).content.decode()
    assert client.session["cart"] == {product.sku: 3}
    assert "Removed Brass pen from your cart." in html
    assert reverse("shop:product", args=["PEN-01"]) not in html and "€37.50" in html


# --- checkout ----------------------------------------------------------------------------------


def test_checkout_requires_login(client, product):
    add_to_cart(client, product.sku, 1)

    response = client.get(reverse("shop:checkout"))

    assert response.status_code == 302
    assert response.url == f"{reverse('shop:login')}?next={reverse('shop:checkout')}"


def test_checkout_places_an_order_takes_the_stock_empties_the_cart_and_shows_the_order(client, customer, product, address):
    client.force_login(customer)
    add_to_cart(client, product.sku, 2)

    response = client.post(reverse("shop:checkout"), checkout_form(client, address))

    order = Order.objects.get(customer=customer)
    assert response.status_code == 302 and response.url == reverse("shop:order", args=[order.pk])
    assert [(line.sku, line.quantity) for line in order.lines.all()] == [(product.sku, 2)]
    assert str(order.total) == "25.00" and order.ship_to_country == "GB"
    product.refresh_from_db()
    assert product.stock == 8
    assert client.session["cart"] == {}
    html = client.get(response.url).content.decode()
    assert order.number in html and "Ada Lovelace" in html and "Cart <span class=\"count\" data-cart-count>(0)</span>" in html


def test_double_submitting_the_same_checkout_form_places_one_order(client, customer, product, address):
    client.force_login(customer)
    add_to_cart(client, product.sku, 2)
    form = checkout_form(client, address)

    first = client.post(reverse("shop:checkout"), form)
    second = client.post(reverse("shop:checkout"), form)

    assert Order.objects.filter(customer=customer).count() == 1
    assert first.status_code == second.status_code == 302
    assert first.url == second.url
    product.refresh_from_db()
    assert product.stock == 8


def test_out_of_stock_at_checkout_shows_the_reason_and_places_nothing(client, customer, product, address):
    client.force_login(customer)
    add_to_cart(client, product.sku, 2)
    form = checkout_form(client, address)
    Product.objects.filter(pk=product.pk).update(stock=1)  # someone else bought the rest meanwhile

    response = client.post(reverse("shop:checkout"), form)

    assert response.status_code == 409
    assert "not enough stock for MUG-01: 1 left" in response.content.decode()
    assert not Order.objects.exists()
    product.refresh_from_db()
    assert product.stock == 1
    assert client.session["cart"] == {product.sku: 2}


def test_checkout_refuses_a_country_that_is_not_two_capital_letters(client, customer, product, address):
    client.force_login(customer)
    add_to_cart(client, product.sku, 1)

    response = client.post(reverse("shop:checkout"), {**checkout_form(client, address), "country": "gb"})

    assert response.status_code == 400
    assert "two-letter ISO code in capitals" in response.content.decode()
    assert not Order.objects.exists()


def test_checkout_with_an_empty_cart_sends_the_customer_back_to_the_cart(client, customer):
    client.force_login(customer)

    response = client.get(reverse("shop:checkout"))

    assert response.status_code == 302 and response.url == reverse("shop:cart")


# --- orders ----------------------------------------------------------------------------------


def test_my_orders_lists_only_the_customers_own_orders(client, customer, product, address):
    mine = place_order(customer, product, address, quantity=2)
    theirs = place_order(UserFactory(), product, address)
    client.force_login(customer)

    html = client.get(reverse("shop:orders")).content.decode()

    assert mine.number in html and "€25.00" in html and "confirmed" in html
    assert theirs.number not in html


def test_my_orders_come_a_page_at_a_time_newest_first(client, customer, product, address):
    from shop.views import ORDERS_PER_PAGE

    product.stock = ORDERS_PER_PAGE + 5
    product.save()
    numbers = [place_order(customer, product, address).number for _ in range(ORDERS_PER_PAGE + 1)]
    client.force_login(customer)

    first = client.get(reverse("shop:orders")).content.decode()
    second = client.get(reverse("shop:orders") + "?page=2").content.decode()

    assert numbers[-1] in first and numbers[0] not in first and "page 1 of 2" in first
    assert numbers[0] in second and numbers[-1] not in second


def test_order_page_is_404_for_another_customer_and_visible_to_staff(client, customer, staff, product, address):
    order = place_order(customer, product, address)
    url = reverse("shop:order", args=[order.pk])

    client.force_login(UserFactory())
    assert client.get(url).status_code == 404
    assert client.get(reverse("shop:order_journey", args=[order.pk])).status_code == 404
    assert client.post(reverse("shop:order_cancel", args=[order.pk])).status_code == 404

    client.force_login(staff)
    response = client.get(url)
    assert response.status_code == 200 and order.number in response.content.decode()


def test_order_page_shows_lines_address_status_and_a_polled_journey(client, customer, product, address):
    order = place_order(customer, product, address, quantity=2)
    client.force_login(customer)

    html = client.get(reverse("shop:order", args=[order.pk])).content.decode()

    assert "Enamel mug" in html and "€25.00" in html and "St James&#x27;s Square" in html
    assert "What happened so far" in html
    assert "shop.purchase.confirmed recorded" in html
    assert f'data-journey-url="{reverse("shop:order_journey", args=[order.pk])}"' in html
    assert "shop/journey.js" in html
    assert "Cancel order" in html


def test_journey_partial_shows_what_shipping_and_loyalty_reported(client, customer, product, address):
    order = place_order(customer, product, address)
    with transaction.atomic():
        order_note_shipment_created(envelope_for(ShipmentCreated(shipment_id=7, order_id=order.pk, tracking_number="TRK-123", country="GB")))
        order_note_label_rendered(envelope_for(ShippingLabelRendered(shipment_id=7, order_id=order.pk, label_url="/media/labels/7.pdf")))
    client.force_login(customer)

    response = client.get(reverse("shop:order_journey", args=[order.pk]))
    html = response.content.decode()

    assert response.status_code == 200
    assert "<html" not in html  # a fragment to swap in, not a page
    assert "Shipment created, tracking TRK-123" in html and "Shipping label printed" in html
    assert 'href="/media/labels/7.pdf"' in html
    assert 'data-settled="false"' in html  # no points yet: keep polling


def test_the_journey_shows_each_step_in_milliseconds_since_the_order(client, customer, product, address):
    order = place_order(customer, product, address)
    shipped = Envelope(event=ShipmentCreated(shipment_id=7, order_id=order.pk, tracking_number="TRK-1", country="GB"),
                       sequence=1, id=uuid.uuid4(), time=order.created_at + timedelta(milliseconds=1234))
    with transaction.atomic():
        order_note_shipment_created(shipped)
    client.force_login(customer)

    html = client.get(reverse("shop:order_journey", args=[order.pk])).content.decode()

    assert "+1234 ms" in html


def test_journey_partial_says_settled_once_shipped_and_credited(client, customer, product, address):
    order = place_order(customer, product, address)
    with transaction.atomic():
        order_note_shipment_created(envelope_for(ShipmentCreated(shipment_id=7, order_id=order.pk, tracking_number="TRK-123", country="GB")))
        order_note_points_awarded(envelope_for(PointsAwarded(order_id=order.pk, customer_id=customer.pk, points=12, balance=12)))
    client.force_login(customer)

    html = client.get(reverse("shop:order_journey", args=[order.pk])).content.decode()

    assert "12 loyalty points credited" in html
    assert 'data-settled="true"' in html


def test_cancelling_an_order_puts_the_stock_back_and_hides_the_cancel_button(client, customer, product, address):
    order = place_order(customer, product, address, quantity=3)
    client.force_login(customer)

    response = client.post(reverse("shop:order_cancel", args=[order.pk]))

    assert response.status_code == 302 and response.url == reverse("shop:order", args=[order.pk])
    order.refresh_from_db()
    product.refresh_from_db()
    assert order.status == Order.Status.CANCELLED and product.stock == 10
    html = client.get(response.url).content.decode()
    assert "Cancel order" not in html and "shop.order.cancelled recorded" in html


def test_cancel_only_accepts_post(client, customer, product, address):
    order = place_order(customer, product, address)
    client.force_login(customer)

    assert client.get(reverse("shop:order_cancel", args=[order.pk])).status_code == 405
    order.refresh_from_db()
    assert order.status == Order.Status.CONFIRMED


# --- login, header, assets ---------------------------------------------------------------------


def test_logging_in_shows_the_username_in_the_header(client, db):
    UserFactory(username="ada")

    response = client.post(reverse("shop:login"), {"username": "ada", "password": "s3cret-pass"}, follow=True)

    html = response.content.decode()
    assert "ada" in html and "Log out" in html and f'action="{reverse("shop:logout")}"' in html


def test_logging_out_takes_a_post_and_ends_the_session(client, customer):
    client.force_login(customer)

    response = client.post(reverse("shop:logout"))

    assert response.status_code == 302
    assert "_auth_user_id" not in client.session


def test_no_page_loads_css_js_or_fonts_from_another_site(client, customer, product, address):
    order = place_order(customer, product, address)
    add_to_cart(client, product.sku, 1)
    pages = [reverse("shop:catalog"), reverse("shop:product", args=[product.sku]), reverse("shop:cart"), reverse("shop:login")]
    html = {url: client.get(url).content.decode() for url in pages}
    client.force_login(customer)
    for url in [reverse("shop:checkout"), reverse("shop:orders"), reverse("shop:order", args=[order.pk]), "/api/docs/"]:
        html[url] = client.get(url).content.decode()

    external = re.compile(r"<(?:link|script)\b[^>]*\b(?:href|src)\s*=\s*[\"']?(?:https?:)?//", re.IGNORECASE)
    assert {url: external.findall(page) for url, page in html.items() if external.search(page)} == {}
    assert all("<link" in page for url, page in html.items() if url != "/api/docs/")
    for asset in (Path(settings.BASE_DIR) / "shop" / "static" / "shop").glob("*.css"):
        assert not re.search(r"(?:@import|url\()\s*[\"']?(?:https?:)?//", asset.read_text()), asset
