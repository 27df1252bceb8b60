"""Issue 14 end to end in Chromium: a code applied in the cart, a mixed cart shipped to a state that
taxes OTC medicines, the card authorised for the module's total, a pharmacist cuts a line, and the
captured amount and the email agree with the module."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from djmoney.money import Money

from discounts.models import DiscountCode, DiscountKind, DiscountRedemption
from notifications.models import EmailKind, OutboundEmail
from notifications.services import email_render
from orders.services import order_link
from orders.state import OrderStatus, PaymentStatus
from prescriptions import decisions as rx
from salestax.models import TaxRate
from tests.e2e.test_checkout import add_to_cart, checkout, order_page_reached, shop  # noqa: F401  (shop is a fixture)
from tests.localstripe import CARD_OK
from tests.prescriptions.prescription_support import captured_minor, make_pharmacist

pytestmark = pytest.mark.e2e


def test_code_tax_authorisation_cut_capture_and_email_agree(
    shop, page, localstripe, baclofen, general_product
):
    TaxRate.objects.create(
        state="NY",
        rate=Decimal("8.875"),
        otc_exempt=False,
        shipping_taxable=True,
        effective_from=timezone.localdate() - timedelta(days=1),
    )
    DiscountCode.objects.create(code="SPRING10", kind=DiscountKind.PERCENT, value=Decimal("10"))
    add_to_cart(page, shop, baclofen, "10mg", 90)
    add_to_cart(page, shop, baclofen, "10mg", 90)  # two packs: the pharmacist will approve one
    add_to_cart(page, shop, general_product, "10mg", 30)

    page.goto(shop.url + reverse("cart:detail"))
    page.get_by_label("Code", exact=True).fill("spring10")
    page.get_by_role("button", name="Apply").click()
    page.get_by_text("Code SPRING10 applied.").first.wait_for()
    totals = page.locator(".cart-totals").inner_text()
    assert (
        "Discount (SPRING10)" in totals and "-$1.20" in totals
    )  # 10% of the $12.00 general-sale pack only

    checkout(page, shop, CARD_OK)
    order = order_page_reached(page)
    order.refresh_from_db()
    # 2 × 68.23 + 12.00 = 148.46 − 1.20 = 147.26 (< 150: shipping 9.95);
    # tax 8.875% on 10.80 (0.96) and on shipping (0.88).
    assert (order.subtotal, order.discount, order.shipping, order.tax) == (
        Money("148.46", "USD"),
        Money("1.20", "USD"),
        Money("9.95", "USD"),
        Money("1.84", "USD"),
    )
    assert order.total == Money("159.05", "USD")
    assert page.locator("#order-total").inner_text() == "$159.05"
    assert "Sales tax (8.875%)" in page.locator("main").inner_text()
    intent = localstripe.payment_intent(order.stripe_payment_intent_id)
    assert (intent["amount"], intent["status"]) == (15905, "requires_capture")
    assert (
        order.payment_status == PaymentStatus.AUTHORIZED and DiscountRedemption.objects.count() == 1
    )

    line = order.lines.get(product_name="Baclofen")
    rx.prescription_approve_with_changes(
        order=order,
        by=make_pharmacist(),
        approved_packages={line.pk: 1},
        note="One pack is prescribed.",
    )
    order.refresh_from_db()
    # 68.23 + 12.00 − 1.20 = 79.03; shipping kept 9.95; tax unchanged (0.96 + 0.88): 90.82.
    assert order.total == Money("90.82", "USD") and order.status == OrderStatus.READY_TO_SHIP
    assert captured_minor(localstripe, order.stripe_payment_intent_id) == 9082
    body = email_render(
        email=OutboundEmail.objects.get(order=order, kind=EmailKind.PRESCRIPTION_APPROVED)
    ).body
    assert (
        "Discount (SPRING10): -$1.20" in body
        and "Sales tax (8.875%): $1.84" in body
        and "Total: $90.82" in body
    )
    page.goto(shop.url + order_link(order))
    assert page.locator("#order-total").inner_text() == "$90.82"
