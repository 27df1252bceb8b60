"""Headless Chromium (Playwright, sync API) against pytest-django's live server."""
import os

import pytest
from djmoney.money import Money

from catalog.models import LegalClass
from tests.factories import DosageFactory, PackageTierFactory, ProductFactory

# Playwright's sync API runs an event loop in this thread; Django's ORM calls from the test are safe here.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing; CI must run the browser tests (apt-get install -y chromium).")
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    # Shown with a failing test's output: the browser's console and failed requests.
    page.on("console", lambda msg: print(f"[console.{msg.type}] {msg.text}"))
    page.on("pageerror", lambda exc: print(f"[pageerror] {exc}"))
    page.on("requestfailed", lambda req: print(f"[requestfailed] {req.url} {req.failure}"))
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def general_product(transactional_db):
    """A general-sale medicine: no prescription, so its payment is captured at once."""
    product = ProductFactory(name="Loratadine", slug="loratadine", legal_class=LegalClass.GENERAL_SALE)
    dosage = DosageFactory(product=product, strength="10mg", list_price_per_pill=Money("0.50000", "USD"))
    PackageTierFactory(dosage=dosage, quantity=30, price=Money("12.00", "USD"), sku="LOR-10-30")
    return product
