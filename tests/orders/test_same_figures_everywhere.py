"""Property: a random cart shows the same figures on the cart page, the checkout page, the placed
order, the PaymentIntent (localstripe) and the order email. Real PostgreSQL, real views."""

from __future__ import annotations

import html
import re
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone
from djmoney.money import Money
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cart.models import Cart, CartLine
from catalog.models import LegalClass
from catalog.pricing import format_money
from checkout.placement import order_place
from discounts.models import DiscountCode, DiscountKind
from notifications.models import EmailKind, OutboundEmail
from notifications.services import email_render
from orders import services
from orders.models import Order
from salestax.models import TaxRate
from tests.factories import DosageFactory, PackageTierFactory, ProductFactory
from tests.localstripe import CARD_OK, browser_confirm

pytestmark = pytest.mark.django_db

CLASSES = [LegalClass.GENERAL_SALE, LegalClass.PHARMACY, LegalClass.PRESCRIPTION]
CODES = [
    None,
    ("PCT", DiscountKind.PERCENT, "12"),
    ("FIX", DiscountKind.FIXED, "7.50"),
    ("SHIP", DiscountKind.FREE_SHIPPING, "0"),
]


def _text(response) -> str:
    return re.sub(r"\s+", " ", html.unescape(response.content.decode()))


@pytest.fixture
def rates(db):
    day = timezone.localdate() - timedelta(days=1)
    TaxRate.objects.get_or_create(
        state="NY",
        effective_from=day,
        defaults={"rate": Decimal("8.875"), "shipping_taxable": True},
    )
    TaxRate.objects.get_or_create(
        state="PA", effective_from=day, defaults={"rate": Decimal("6"), "otc_exempt": True}
    )
    TaxRate.objects.get_or_create(
        state="TX", effective_from=day, defaults={"rate": Decimal("6.25")}
    )
    for code, kind, value in filter(None, CODES):
        DiscountCode.objects.get_or_create(
            code=code, defaults={"kind": kind, "value": Decimal(value), "max_uses_per_email": None}
        )


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    items=st.lists(
        st.tuples(
            st.decimals(Decimal("1.00"), Decimal("120.00"), places=2),
            st.integers(1, 4),
            st.sampled_from(CLASSES),
        ),
        min_size=1,
        max_size=4,
    ),
    code=st.sampled_from(CODES),
    state=st.sampled_from(["NY", "PA", "TX", "NJ"]),
)
def test_the_same_cart_gives_the_same_figures_everywhere(localstripe, rates, items, code, state):
    client = Client()
    client.get("/cart/")  # a session
    cart = Cart.objects.create(session_key=client.session.session_key or uuid.uuid4().hex)
    session = client.session
    session["cart_id"] = cart.pk
    session.save()
    Cart.objects.filter(pk=cart.pk).update(session_key=session.session_key)
    for price, packages, legal_class in items:
        tag = uuid.uuid4().hex[:8]
        product = ProductFactory(name=f"Medicine {tag}", slug=f"m-{tag}", legal_class=legal_class)
        dosage = DosageFactory(
            product=product, strength="10mg", list_price_per_pill=Money("9.00000", "USD")
        )
        tier = PackageTierFactory(
            dosage=dosage, quantity=30, price=Money(price, "USD"), sku=f"SKU-{tag}"
        )
        CartLine.objects.create(
            cart=cart, tier=tier, packages=packages, price_when_added=tier.price
        )
    if code:
        client.post("/cart/code/", {"code": code[0]})
    cart.refresh_from_db()

    cart_page = _text(client.get("/cart/"))
    checkout_page = _text(client.get(f"/checkout/?state={state}"))
    if (
        "Before you can check out" in cart_page
    ):  # the code does not fit this cart: nothing to compare
        with pytest.raises(services.OrderError):
            order_place(
                cart=cart,
                email="p@example.com",
                shipping_method="standard",
                prescription=None,
                address=services.ShippingAddress(
                    name="P", line1="1 St", city="C", state=state, zip_code="12207"
                ),
            )
        return

    from tests.orders.conftest import prescriber_intake

    placed = order_place(
        cart=cart,
        email="p@example.com",
        shipping_method="standard",
        prescription=prescriber_intake(cart),
        address=services.ShippingAddress(
            name="P", line1="1 St", city="C", state=state, zip_code="12207"
        ),
    )
    order = placed.order
    browser_confirm(
        base=localstripe.base, intent_id=order.stripe_payment_intent_id, card_number=CARD_OK
    )
    order = services.order_sync_payment(order_id=order.pk)
    order = Order.objects.get(pk=order.pk)
    body = email_render(
        email=OutboundEmail.objects.get(order=order, kind=EmailKind.ORDER_RECEIVED)
    ).body

    # The cart page: subtotal, discount and shipping (tax is added once a state is known).
    assert format_money(order.subtotal) in cart_page
    if order.discount.amount:
        assert (
            f"-{format_money(order.discount)}" in cart_page
            and f"-{format_money(order.discount)}" in checkout_page
        )
    # The checkout page for that state: the tax and the total the card is asked for.
    assert f"{format_money(order.total)}" in checkout_page
    assert "Sales tax" in checkout_page and format_money(order.tax) in checkout_page
    # The PaymentIntent and the email.
    assert localstripe.payment_intent(order.stripe_payment_intent_id)["amount"] == int(
        order.total.amount * 100
    )
    assert f"Total: {order.total}" in body and f"Subtotal: {order.subtotal}" in body
    # And the order holds together: the total is its parts.
    assert (
        order.total.amount
        == order.subtotal.amount - order.discount.amount + order.shipping.amount + order.tax.amount
    )
