"""A customer browses, adds to cart, checks out, and watches the order's journey complete, live."""
import re

from tests.e2e.conftest import log_in, screenshot


def test_a_customer_buys_a_mug_and_sees_shipping_and_loyalty_report_back(page, embedded_stack):
    stack = embedded_stack
    stack.start_all()
    stack.start("worker#1")
    log_in(page, stack.base_url, "demo")

    page.goto(f"{stack.base_url}/")
    screenshot(page, "catalog")
    page.click("text=Enamel camping mug")
    page.fill("input[name=quantity]", "2")
    page.click("button:has-text('Add to cart')")
    page.goto(f"{stack.base_url}/cart/")
    assert "Enamel camping mug" in page.inner_text("main")
    page.click("a:has-text('Checkout')")
    page.fill("input[name=name]", "Ada Lovelace")
    page.fill("input[name=line1]", "12 St James's Square")
    page.fill("input[name=city]", "London")
    page.fill("input[name=postal_code]", "SW1Y 4JH")
    page.fill("input[name=country]", "GB")
    page.click("button:has-text('Place order')")

    page.wait_for_url(re.compile(r"/orders/\d+/$"))
    # The journey refreshes by itself: no reload here, the page polls and swaps the partial.
    page.wait_for_selector(".timeline-entry.source-shipping", timeout=30_000)
    page.wait_for_selector(".timeline-entry.source-loyalty", timeout=30_000)
    page.wait_for_selector(".journey[data-settled=true]", timeout=30_000)
    journey = page.inner_text(".journey")
    assert "Shipment created" in journey and "loyalty points credited" in journey
    assert "fulfilled" in journey.lower()
    screenshot(page, "order-journey")
