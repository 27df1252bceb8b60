"""Checkout and cart guide the user: error summary with focus, focus kept in the cart, the chosen
prescription route shown."""

import re

import pytest
from django.urls import reverse
from djmoney.money import Money
from playwright.sync_api import expect

from catalog.models import LegalClass
from tests.e2e.test_checkout import add_to_cart, shop  # noqa: F401  (live server + localstripe)
from tests.factories import DosageFactory, PackageTierFactory, ProductFactory

pytestmark = pytest.mark.e2e

ACTIVE_ID = "document.activeElement && document.activeElement.id"


def test_pay_with_errors_focuses_a_summary_that_links_to_each_field(shop, page, general_product):
    add_to_cart(page, shop, general_product, "10mg", 30)
    page.goto(shop.url + reverse("checkout:checkout"))
    page.locator("#card-element input").first.wait_for()  # Stripe.js (localstripe) mounted the card
    page.get_by_label("Email").fill("not-an-email")
    page.get_by_role("button", name="Place order and pay").click()

    summary = page.locator("#error-summary")
    summary.wait_for(state="visible")
    page.wait_for_function(f"{ACTIVE_ID} === 'error-summary'")
    assert summary.evaluate("el => el.getBoundingClientRect().top") >= 0  # scrolled into view
    links = summary.get_by_role("link")
    names = links.all_inner_texts()
    assert any(name.startswith("Email:") for name in names)
    assert any(name.startswith("Full name:") for name in names)
    summary.get_by_role("link", name=re.compile("^Full name:")).click()
    assert page.evaluate(ACTIVE_ID) == "id_name"
    assert page.get_by_label("Full name").get_attribute("aria-invalid") == "true"


@pytest.fixture
def two_products(transactional_db):
    products = []
    for name, sku in (("Cetirizine", "CET-10-30"), ("Fexofenadine", "FEX-10-30")):
        product = ProductFactory(name=name, slug=name.lower(), legal_class=LegalClass.GENERAL_SALE)
        dosage = DosageFactory(
            product=product, strength="10mg", list_price_per_pill=Money("0.50000", "USD")
        )
        PackageTierFactory(dosage=dosage, quantity=30, price=Money("9.00", "USD"), sku=sku)
        products.append(product)
    return products


def test_cart_update_and_remove_keep_focus_on_the_cart(live_server, page, two_products):
    for product in two_products:
        add_to_cart(page, live_server, product, "10mg", 30)
    page.goto(live_server.url + reverse("cart:detail"))
    first = page.locator(".cart-line").first
    line_id = first.get_attribute("id")
    first.get_by_label("Packs").fill("2")
    first.get_by_label("Packs").press("Tab")
    page.keyboard.press("Enter")  # the focused Update button
    page.locator(f"#{line_id} .cart-line-pack").filter(has_text="2 packs").wait_for()
    # htmx moves focus when the swap has settled, a moment after the new text is in place.
    expect(page.locator(f"#{line_id} .cart-update button")).to_be_focused()
    focused = page.evaluate(
        "[document.activeElement.textContent, document.activeElement.closest('.cart-line')?.id]"
    )
    assert focused == ["Update", line_id]

    page.locator(f"#{line_id}").get_by_role("button", name=re.compile("^Remove")).focus()
    page.keyboard.press("Enter")
    page.locator(f"#{line_id}").wait_for(state="detached")
    expect(page.locator("#cart-title")).to_be_focused()
    assert page.evaluate(ACTIVE_ID) == "cart-title"
    assert page.locator(".cart-line").count() == 1


def test_the_prescription_step_shows_the_chosen_route(live_server, page, baclofen):
    add_to_cart(page, live_server, baclofen, "10mg", 90)
    page.goto(live_server.url + reverse("checkout:checkout"))
    upload = page.get_by_label(re.compile(r"^Prescription \(PDF"))
    prescriber = page.get_by_label("Prescriber's name")
    assert upload.is_visible() and not prescriber.is_visible()
    page.get_by_label("Please get it from my prescriber").check()
    assert prescriber.is_visible() and not upload.is_visible()
    # The state select shows its whole placeholder.
    state = page.get_by_label("State")
    assert state.evaluate("el => el.scrollWidth <= el.clientWidth")
    assert state.evaluate("el => el.getBoundingClientRect().width") >= 150
