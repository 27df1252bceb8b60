"""US sales tax at checkout against localstripe: the staff's rate table, snapshotted on the order."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from djmoney.money import Money

from cart.models import Cart, CartLine
from catalog.models import LegalClass
from checkout.placement import order_place
from orders import services
from prescriptions import decisions as rx
from salestax.models import TaxRate
from tests.factories import DosageFactory, PackageTierFactory, ProductFactory
from tests.orders.conftest import prescriber_intake
from tests.orders.money_support import use_client_cart
from tests.prescriptions.prescription_support import authorise, captured_minor, make_pharmacist

pytestmark = pytest.mark.django_db


def usd(amount) -> Money:
    return Money(Decimal(str(amount)), "USD")


def tier(name, legal_class, price):
    product = ProductFactory(name=name, slug=name.lower(), legal_class=legal_class)
    dosage = DosageFactory(
        product=product, strength="10mg", list_price_per_pill=Money("2.00000", "USD")
    )
    return PackageTierFactory(
        dosage=dosage, quantity=30, price=usd(price), sku=f"{name[:3].upper()}-30"
    )


@pytest.fixture
def mixed_cart(db):
    """General-sale 2 × $20.00, pharmacy-only 1 × $35.50, prescription-only 1 × $68.23."""
    cart = Cart.objects.create(session_key=uuid.uuid4().hex)
    for t, packages in (
        (tier("Loratadine", LegalClass.GENERAL_SALE, "20.00"), 2),
        (tier("Naproxen", LegalClass.PHARMACY, "35.50"), 1),
        (tier("Baclofen", LegalClass.PRESCRIPTION, "68.23"), 1),
    ):
        CartLine.objects.create(cart=cart, tier=t, packages=packages, price_when_added=t.price)
    return cart


@pytest.fixture
def rates(db):
    today = timezone.localdate()
    TaxRate.objects.create(
        state="NY",
        rate=Decimal("8.875"),
        otc_exempt=False,
        shipping_taxable=True,
        effective_from=today - timedelta(days=30),
    )
    TaxRate.objects.create(
        state="PA",
        rate=Decimal("6.000"),
        otc_exempt=True,
        shipping_taxable=False,
        effective_from=today - timedelta(days=30),
    )


def place(cart, state):
    address = services.ShippingAddress(
        name="Alex Morgan", line1="1 Main St", city="Town", state=state, zip_code="12207"
    )
    return order_place(
        cart=cart,
        email="alex@example.com",
        address=address,
        shipping_method="standard",
        prescription=prescriber_intake(cart),
    )


def test_mixed_cart_to_a_state_taxing_otc_medicines(localstripe, mixed_cart, rates):
    placed = place(mixed_cart, "NY")
    order = placed.order
    # OTC goods 75.50 × 8.875% = 6.70; shipping 9.95 × 8.875% = 0.88; the prescription item untaxed.
    assert (order.subtotal, order.shipping, order.tax, order.total) == (
        usd("143.73"),
        usd("9.95"),
        usd("7.58"),
        usd("161.26"),
    )
    taxes = {line.product_name: line.tax for line in order.lines.all()}
    assert taxes == {"Loratadine": usd("3.55"), "Naproxen": usd("3.15"), "Baclofen": usd("0.00")}
    assert order.tax_rule == {
        "state": "NY",
        "rate": "8.875",
        "otc_exempt": False,
        "shipping_taxable": True,
    }
    assert localstripe.payment_intent(order.stripe_payment_intent_id)["amount"] == 16126


def test_mixed_cart_to_a_state_exempting_otc_medicines(localstripe, mixed_cart, rates):
    order = place(mixed_cart, "PA").order
    assert (order.tax, order.total) == (usd("0.00"), usd("153.68"))
    assert localstripe.payment_intent(order.stripe_payment_intent_id)["amount"] == 15368


def test_a_state_without_a_rate_charges_no_tax(localstripe, mixed_cart, rates):
    assert place(mixed_cart, "NJ").order.tax == usd("0.00")


def test_a_rate_takes_effect_on_its_date():
    TaxRate.objects.create(state="NY", rate=Decimal("4"), effective_from=date(2020, 1, 1))
    TaxRate.objects.create(state="NY", rate=Decimal("5"), effective_from=date(2030, 1, 1))
    from salestax.services import tax_rate_in_force

    assert tax_rate_in_force(state="NY", on=date(2029, 12, 31)).rate == Decimal("4")
    assert tax_rate_in_force(state="NY", on=date(2030, 1, 1)).rate == Decimal("5")


def test_a_rate_change_does_not_change_placed_orders_even_when_a_pharmacist_cuts_a_line(
    localstripe, mixed_cart, rates
):
    order = authorise(localstripe, place(mixed_cart, "NY"))
    TaxRate.objects.filter(state="NY").update(rate=Decimal("12.000"), otc_exempt=True)
    order.refresh_from_db()
    assert order.tax == usd("7.58")  # stored, not read from the table

    loratadine = order.lines.get(product_name="Loratadine")
    rx.prescription_approve_with_changes(
        order=order,
        by=make_pharmacist(),
        approved_packages={loratadine.pk: 1},
        note="One pack is enough.",
    )
    order.refresh_from_db()
    # Recomputed by the module with the order's own 8.875%: OTC 55.50 → 4.93 (4.925 half-up), shipping kept 9.95 → 0.88.
    assert (order.subtotal, order.shipping, order.tax) == (usd("123.73"), usd("9.95"), usd("5.81"))
    assert order.total == usd("139.49")
    assert captured_minor(localstripe, order.stripe_payment_intent_id) == 13949
    assert sum(line.tax.amount for line in order.lines.all()) == Decimal("4.93")


def test_tax_is_its_own_line_on_the_checkout_and_order_pages_and_in_the_email(
    client, localstripe, mixed_cart, rates
):
    from notifications.models import EmailKind, OutboundEmail
    from notifications.services import email_render

    use_client_cart(client, mixed_cart)
    checkout = client.get("/checkout/?state=NY").content.decode()
    assert "Sales tax (8.875%)" in checkout and "$7.58" in checkout and "$161.26" in checkout

    order = authorise(localstripe, place(mixed_cart, "NY"))
    page = client.get(services.order_link(order)).content.decode()
    assert "Sales tax (8.875%)" in page and "$7.58" in page and "$161.26" in page
    message = email_render(
        email=OutboundEmail.objects.get(order=order, kind=EmailKind.ORDER_RECEIVED)
    )
    assert "Sales tax (8.875%): $7.58" in message.body and "Total: $161.26" in message.body
    html = message.alternatives[0][0]
    assert "Sales tax (8.875%)" in html and "$7.58" in html


def test_a_partial_refund_says_how_much_of_it_is_sales_tax(localstripe, rates):
    from notifications.models import EmailKind, OutboundEmail
    from notifications.services import email_render
    from tests.factories import UserFactory
    from tests.localstripe import CARD_OK, browser_confirm

    cart = Cart.objects.create(session_key=uuid.uuid4().hex)
    otc = tier("Cetirizine", LegalClass.GENERAL_SALE, "100.00")
    CartLine.objects.create(cart=cart, tier=otc, packages=2, price_when_added=otc.price)
    order = place(cart, "NY").order
    # 200.00 (free shipping) + 17.75 tax = 217.75
    assert (order.tax, order.total) == (usd("17.75"), usd("217.75"))
    browser_confirm(
        base=localstripe.base, intent_id=order.stripe_payment_intent_id, card_number=CARD_OK
    )
    order = services.order_sync_payment(order_id=order.pk)
    services.order_refund(
        order=order,
        amount=usd("108.88"),
        reason="One pack returned unopened.",
        by=UserFactory(is_staff=True, is_superuser=True),
    )
    message = email_render(
        email=OutboundEmail.objects.get(order=order, kind=EmailKind.REFUND_ISSUED)
    )
    # Half the order back: half its tax, 8.88 (17.75 × 108.88 / 217.75 = 8.8752…).
    assert "Of this, $8.88 is sales tax given back." in message.body


def test_the_checkout_page_says_the_tax_is_still_to_come_until_a_state_is_entered(
    client, mixed_cart, rates
):
    use_client_cart(client, mixed_cart)
    page = client.get("/checkout/").content.decode()
    assert "Added for your shipping state" in page and "before sales tax" in page
    assert "Sales tax for" not in page  # no separate control: the address's own state prices it
    shown = client.get("/checkout/?state=PA").content.decode()
    assert (
        "Sales tax (6%)" in shown and "$153.68" in shown and "sales tax for Pennsylvania" in shown
    )
