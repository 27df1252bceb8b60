"""The one approval: the amount on the button is the server's, before the pharmacist confirms,
with and without JavaScript, and it is exactly what is captured (tax and a discount code included)."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from djmoney.money import Money

from cart.models import Cart, CartLine
from catalog.models import LegalClass
from checkout.placement import order_place
from discounts.models import DiscountCode, DiscountKind
from orders.state import PaymentStatus
from prescriptions.models import PrescriptionOnFile
from salestax.models import TaxRate
from tests.factories import DosageFactory, PackageTierFactory, ProductFactory
from tests.orders.conftest import ADDRESS, prescriber_intake
from tests.prescriptions.prescription_support import (
    approve_data,
    authorise,
    captured_minor,
    make_pharmacist,
)

pytestmark = pytest.mark.django_db


def tier(name, legal_class, price):
    product = ProductFactory(
        name=name, slug=f"{name.lower()}-{uuid.uuid4().hex[:6]}", legal_class=legal_class
    )
    dosage = DosageFactory(
        product=product, strength="10mg", list_price_per_pill=Money("5.00000", "USD")
    )
    return PackageTierFactory(
        dosage=dosage,
        quantity=30,
        price=Money(price, "USD"),
        sku=f"{name[:3].upper()}-{uuid.uuid4().hex[:6]}",
    )


@pytest.fixture
def taxed_order_with_code(localstripe):
    """NY (8.875 %, shipping taxed), 10 % off everything: 2 × Loratadine $40, 2 × Baclofen $60 (Rx)."""
    TaxRate.objects.create(
        state="NY",
        rate=Decimal("8.875"),
        shipping_taxable=True,
        effective_from=timezone.localdate() - timedelta(days=7),
    )
    DiscountCode.objects.create(
        code="TEN", kind=DiscountKind.PERCENT, value=Decimal("10"), applies_to_prescription=True
    )
    cart = Cart.objects.create(session_key=uuid.uuid4().hex, discount_code="TEN")
    for t in (
        tier("Loratadine", LegalClass.GENERAL_SALE, "40.00"),
        tier("Baclofen", LegalClass.PRESCRIPTION, "60.00"),
    ):
        CartLine.objects.create(cart=cart, tier=t, packages=2, price_when_added=t.price)
    placed = order_place(
        cart=cart,
        email="alex@example.com",
        address=ADDRESS,
        shipping_method="standard",
        prescription=prescriber_intake(cart),
    )
    order = authorise(localstripe, placed)
    assert order.tax.amount > 0 and order.discount.amount > 0
    return order


def shown(html: str) -> tuple[str, str]:
    """The amount the page names on the Approve button, and the one its form carries back."""
    button = re.search(
        r'id="approve-submit"\s*>Approve and charge \$([\d,.]+)</button>', html
    ).group(1)
    carried = re.search(r'name="shown_capture" value="([\d.]+)"', html).group(1)
    return button, carried


@pytest.mark.parametrize(
    "cut", [{"Baclofen": 1}, {"Loratadine": 1, "Baclofen": 1}, {"Loratadine": 0}]
)
def test_the_amount_shown_before_approving_is_the_amount_captured(
    client, localstripe, taxed_order_with_code, cut
):
    order = taxed_order_with_code
    client.force_login(make_pharmacist())
    lines = {line.product_name: line for line in order.lines.all()}
    packs = {lines[name].pk: n for name, n in cut.items()}
    page = client.get(reverse("prescriptions:review_order", args=[order.number])).content.decode()
    assert shown(page) == (
        f"{order.total.amount:,}",
        str(order.total.amount),
    )  # as ordered: the whole hold

    data = approve_data(order, packs=packs, refills=2, note="As prescribed.")
    # Without JavaScript: "Update the amount" shows the page again with the server's figure.
    preview = client.post(
        reverse("prescriptions:review_approve", args=[order.number]), {**data, "preview": "1"}
    )
    assert preview.status_code == 200
    button, carried = shown(preview.content.decode())
    assert "As prescribed." in preview.content.decode()  # what was typed is kept
    # With JavaScript: htmx asks the server for the same fragment.
    fragment = client.post(
        reverse("prescriptions:review_approve_preview", args=[order.number]), data
    ).content.decode()
    assert shown(fragment) == (button, carried)
    assert Decimal(carried) < order.total.amount
    assert (
        localstripe.payment_intent(order.stripe_payment_intent_id)["status"] == "requires_capture"
    )  # a preview charges nothing

    response = client.post(
        reverse("prescriptions:review_approve", args=[order.number]),
        {**data, "shown_capture": carried},
    )
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.payment_status == PaymentStatus.CAPTURED
    assert captured_minor(localstripe, order.stripe_payment_intent_id) == int(
        Decimal(carried) * 100
    )
    assert order.amount_captured.amount == Decimal(carried) == order.total.amount
    # The prescription is kept on file with the refills the pharmacist entered (unless its line was removed).
    if cut.get("Baclofen", 2):
        assert PrescriptionOnFile.objects.get(source_order=order).refills_authorised == 2


def test_a_stale_amount_is_shown_again_and_nothing_is_captured(
    client, localstripe, taxed_order_with_code
):
    order = taxed_order_with_code
    client.force_login(make_pharmacist())
    baclofen = order.lines.get(product_name="Baclofen")
    data = approve_data(order, packs={baclofen.pk: 1}, note="One pack prescribed.")
    # A form without the amount (not from the page) captures nothing; the page shows the amount.
    without = {k: v for k, v in data.items() if k != "shown_capture"}
    response = client.post(reverse("prescriptions:review_approve", args=[order.number]), without)
    assert (
        response.status_code == 409
        and "check the amount on the button" in response.content.decode()
    )
    assert (
        localstripe.payment_intent(order.stripe_payment_intent_id)["status"] == "requires_capture"
    )
    # The button named the full amount (packs as ordered), then a pack was cut without a new preview.
    response = client.post(
        reverse("prescriptions:review_approve", args=[order.number]),
        {**data, "shown_capture": str(order.total.amount)},
    )
    assert response.status_code == 409
    html = response.content.decode()
    button, carried = shown(html)
    assert (
        f"The amount to capture is now ${button}" in html and Decimal(carried) < order.total.amount
    )
    assert (
        localstripe.payment_intent(order.stripe_payment_intent_id)["status"] == "requires_capture"
    )
    response = client.post(
        reverse("prescriptions:review_approve", args=[order.number]),
        {**data, "shown_capture": carried},
    )
    assert response.status_code == 302
    assert captured_minor(localstripe, order.stripe_payment_intent_id) == int(
        Decimal(carried) * 100
    )
