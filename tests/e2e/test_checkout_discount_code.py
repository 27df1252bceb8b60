"""A code applied at checkout in Chromium keeps the typed address; Enter in the ZIP field still
updates the total (not "Apply" or "Remove code"); Pay charges the discounted total shown."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from djmoney.money import Money

from discounts.models import DiscountCode, DiscountKind
from salestax.models import TaxRate
from tests.e2e.test_checkout import add_to_cart, order_page_reached, shop  # noqa: F401  (shop is a fixture)
from tests.localstripe import CARD_OK

pytestmark = pytest.mark.e2e


def test_a_code_applied_at_checkout_keeps_the_address_and_is_charged(
    shop, page, localstripe, general_product
):
    TaxRate.objects.create(
        state="NY",
        rate=Decimal("8.875"),
        otc_exempt=False,
        shipping_taxable=True,
        effective_from=timezone.localdate() - timedelta(days=1),
    )
    DiscountCode.objects.create(code="SPRING10", kind=DiscountKind.PERCENT, value=Decimal("10"))
    add_to_cart(page, shop, general_product, "10mg", 30)
    page.goto(shop.url + reverse("checkout:checkout"))
    page.wait_for_load_state("load")
    page.get_by_label("Email").fill("alex.morgan@example.com")
    page.get_by_label("Full name").fill("Alex Morgan")
    page.get_by_label("Address line 1").fill("100 River Street")
    page.get_by_label("City").fill("Albany")
    page.get_by_label("State").select_option("NY")
    zip_box = page.get_by_label("ZIP code")
    zip_box.fill("12207")
    zip_box.press("Enter")  # the code box is empty: this is "Update total", not a refused code
    pay_total = page.locator("#pay-total strong")
    pay_total.filter(has_text="$23.90").wait_for()  # 12.00 + 9.95 + tax 1.95

    page.get_by_label("Code", exact=True).fill("spring10")
    page.get_by_label("Code", exact=True).press("Enter")  # Enter in the code box applies it
    page.get_by_role("button", name="Remove code").wait_for()
    assert page.locator(".discount-code").inner_text().count("Code SPRING10 applied.") == 1
    assert page.get_by_label("Full name").input_value() == "Alex Morgan"
    assert page.get_by_label("Address line 1").input_value() == "100 River Street"
    assert page.get_by_label("Email").input_value() == "alex.morgan@example.com"
    assert zip_box.input_value() == "12207" and page.get_by_label("State").input_value() == "NY"
    assert "Discount (SPRING10)" in page.locator("#checkout-totals").inner_text()
    assert pay_total.inner_text() == "$22.59"  # 10.80 + 9.95 + tax 0.96 + 0.88

    # Enter in the ZIP field with the code applied: the totals follow, the code stays.
    page.get_by_label("State").select_option("NJ")
    zip_box.fill("07030")
    zip_box.press("Enter")
    pay_total.filter(has_text="$20.75").wait_for()  # no tax in NJ
    assert page.get_by_role("button", name="Remove code").is_visible()
    assert page.locator("#checkout-totals").get_by_text("Discount (SPRING10)").is_visible()
    assert (
        page.locator("#error-summary").is_hidden()
        and page.locator("#code-message").inner_text() == ""
    )

    card_box = page.locator("#card-element")
    card_box.get_by_placeholder("number").fill(CARD_OK)
    card_box.get_by_placeholder("exp_month").fill("12")
    card_box.get_by_placeholder("exp_year").fill("34")
    card_box.get_by_placeholder("cvc").fill("123")
    card_box.get_by_placeholder("postal_code").fill("07030")
    page.get_by_role("button", name="Place order and pay").click()
    order = order_page_reached(page)
    assert order.total == Money("20.75", "USD") and order.discount == Money("1.20", "USD")
    assert localstripe.payment_intent(order.stripe_payment_intent_id)["amount"] == 2075
