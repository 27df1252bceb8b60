"""Fixtures for checkout and payment tests."""

from __future__ import annotations

import re
import uuid
from datetime import date

import pytest
from djmoney.money import Money

from cart.models import Cart, CartLine
from catalog.models import LegalClass, PackageTier
from checkout.placement import order_place
from orders import services
from prescriptions.intake import PrescriptionIntake, PrescriptionItem
from tests.factories import DosageFactory, PackageTierFactory, ProductFactory

ADDRESS = services.ShippingAddress(
    name="Alex Morgan", line1="100 River Street", city="Albany", state="NY", zip_code="12207"
)


def make_cart(*, tier, packages: int = 1, user=None) -> Cart:
    cart = (
        Cart.objects.create(user=user)
        if user
        else Cart.objects.create(session_key=uuid.uuid4().hex)
    )
    CartLine.objects.create(cart=cart, tier=tier, packages=packages, price_when_added=tier.price)
    return cart


def attach_to_session(client, cart: Cart) -> None:
    """Make ``cart`` the cart of the test client's session, as adding to cart in a browser would."""
    session = client.session
    session["cart_id"] = cart.pk
    session.save()
    cart.session_key = session.session_key
    cart.save()


def prescriber_intake(cart: Cart) -> PrescriptionIntake | None:
    """The patient and prescriber details a customer gives at checkout for the cart's
    prescription items (None when it has none)."""
    rx_tier_ids = list(
        cart.lines.filter(tier__dosage__product__legal_class=LegalClass.PRESCRIPTION).values_list(
            "tier_id", flat=True
        )
    )
    if not rx_tier_ids:
        return None
    return PrescriptionIntake(
        patient_name="Alex Morgan",
        date_of_birth=date(1980, 5, 17),
        items=tuple(
            PrescriptionItem(
                tier_id=tier_id,
                prescriber_name="Dr. Ruth Okafor",
                prescriber_phone="518-555-0101",
                prescriber_licence="1234567890",
            )
            for tier_id in rx_tier_ids
        ),
    )


def place(
    cart, *, user=None, method: str = "standard", email: str = "alex@example.com"
) -> services.PlacedOrder:
    return order_place(
        cart=cart,
        email=email,
        address=ADDRESS,
        shipping_method=method,
        user=user,
        prescription=prescriber_intake(cart),
    )


@pytest.fixture
def general_tier(db) -> PackageTier:
    """A general-sale medicine (no prescription): its orders are captured at once."""
    product = ProductFactory(
        name="Loratadine", slug="loratadine", legal_class=LegalClass.GENERAL_SALE
    )
    dosage = DosageFactory(
        product=product, strength="10mg", list_price_per_pill=Money("0.50000", "USD")
    )
    return PackageTierFactory(
        dosage=dosage, quantity=30, price=Money("12.00", "USD"), sku="LOR-10-30"
    )


@pytest.fixture
def baclofen_90(baclofen) -> PackageTier:
    return PackageTier.objects.get(dosage__product=baclofen, dosage__strength="10mg", quantity=90)


def shown_figures(client) -> str:
    """The figures the checkout page shows (its hidden ``figures`` field), as a browser posts them back."""
    from django.urls import reverse

    html = client.get(reverse("checkout:checkout")).content.decode()
    match = re.search(r'name="figures" value="([^"]+)"', html)
    assert match, "the checkout page carries the figures it shows"
    return match.group(1)
