"""A real browser (Debian's Chromium, driven by Playwright) against a running Eventshop."""
import os
import shutil
from pathlib import Path

import pytest

from tests.integration.backends import IN_CI
from tests.integration.stack import DEMO_PASSWORD

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
# Test runs keep their pictures out of the tracked tree (var/ is ignored); `make screenshots` runs the
# browser tests with SCREENSHOT_DIR=docs/screenshots to refresh the docs' pictures on purpose.
SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR") or ROOT / "var" / "screenshots")
# Flags for a sandboxed machine with no network but loopback (see the README).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        message = f"Chromium not found at {CHROMIUM} (make test installs Debian's chromium when run as root)"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def log_in(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(lambda url: "/login/" not in url)


def screenshot(page, name: str) -> None:
    """Keep a picture of the page (var/screenshots/, or docs/screenshots/ with `make screenshots`)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
