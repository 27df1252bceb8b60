"""Add to cart with htmx in Chromium: the header count and the refusal update in place."""

import re

import pytest
from djmoney.money import Money

from cart.models import CartLine
from catalog.models import LegalClass
from tests.factories import DosageFactory, PackageTierFactory, ProductFactory

pytestmark = pytest.mark.e2e


@pytest.fixture
def limited_product(transactional_db):
    """A pharmacy medicine sold at most 60 pills per order, in packs of 60."""
    product = ProductFactory(
        name="Loperamide",
        slug="loperamide",
        legal_class=LegalClass.PHARMACY,
        max_pills_per_order=60,
    )
    dosage = DosageFactory(
        product=product, strength="2mg", list_price_per_pill=Money("0.20000", "USD")
    )
    PackageTierFactory(dosage=dosage, quantity=60, price=Money("9.00", "USD"), sku="LOP-2-60")
    return product


def test_add_and_refusal_are_shown_in_place_without_leaving_the_page(
    live_server, page, limited_product
):
    page.goto(live_server.url + limited_product.get_absolute_url())
    page.wait_for_load_state("load")
    button = page.get_by_role("button", name="Add to cart (Loperamide 2mg, 60 pills)")
    url_before = page.url

    button.click()
    page.locator("#header-cart .cart-count").filter(has_text=re.compile(r"^1$")).wait_for()
    assert "Added" in page.locator("#cart-feedback").inner_text()

    # A second pack would break the 60-pill limit: the 400 answer's reason is swapped in place.
    with page.expect_response(lambda r: "/cart/add/" in r.url) as answer:
        button.click()
    assert answer.value.status == 400
    feedback = page.locator("#cart-feedback [role=alert]")
    feedback.wait_for()
    assert "limited to 60 pills per order" in feedback.inner_text()
    assert page.url == url_before  # no navigation: htmx swapped the fragment
    assert page.locator("#header-cart .cart-count").inner_text() == "1"
    assert list(CartLine.objects.values_list("packages", flat=True)) == [1]
