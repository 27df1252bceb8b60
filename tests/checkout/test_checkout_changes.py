"""Checkout never places a different order than the one on screen.

The checkout page carries the figures it shows; when a price moves or a pack sells out before
"Pay", nothing is placed and the customer is told what changed, then confirms the new figures.
"""

import pytest
from django.urls import reverse
from djmoney.money import Money

from catalog.models import LegalClass
from orders.models import Order
from tests.factories import DosageFactory, PackageTierFactory, ProductFactory
from tests.orders.conftest import attach_to_session as attach
from tests.orders.conftest import make_cart, shown_figures

pytestmark = pytest.mark.django_db

FORM = {
    "email": "alex@example.com",
    "name": "Alex Morgan",
    "line1": "1 Main St",
    "city": "Albany",
    "state": "NY",
    "zip_code": "12207",
    "shipping_method": "standard",
}


@pytest.fixture
def cetirizine_tier(db):
    product = ProductFactory(
        name="Cetirizine", slug="cetirizine", legal_class=LegalClass.GENERAL_SALE
    )
    dosage = DosageFactory(
        product=product, strength="10mg", list_price_per_pill=Money("0.40000", "USD")
    )
    return PackageTierFactory(
        dosage=dosage, quantity=30, price=Money("9.00", "USD"), sku="CET-10-30", stock=5
    )


def pay(client, figures):
    return client.post(
        reverse("checkout:checkout"), {**FORM, "figures": figures}, HTTP_ACCEPT="application/json"
    )


def test_unchanged_figures_place_the_order(client, localstripe, general_tier):
    attach(client, make_cart(tier=general_tier, packages=2))
    response = pay(client, shown_figures(client))
    assert response.status_code == 200, response.content
    assert Order.objects.get(number=response.json()["order_number"]).total == Money("33.95", "USD")


def test_a_price_change_is_shown_and_only_the_confirmed_figures_are_placed(
    client, localstripe, general_tier
):
    attach(client, make_cart(tier=general_tier, packages=2))
    figures = shown_figures(client)
    general_tier.price = Money("14.00", "USD")
    general_tier.save()

    response = pay(client, figures)
    assert response.status_code == 409
    data = response.json()
    assert "Loratadine 10mg, 30 pills: $12.00 per pack → $14.00 per pack" in data["changes"]
    assert "Subtotal: $24.00 → $28.00" in data["changes"]
    assert data["total"] == "$37.95"
    assert not Order.objects.exists()

    confirmed = pay(client, data["figures"])
    assert confirmed.status_code == 200, confirmed.content
    order = Order.objects.get(number=confirmed.json()["order_number"])
    assert order.total == Money("37.95", "USD")  # 2 × 14.00 + 9.95, what the customer confirmed


def test_a_pack_that_sold_out_is_named_and_nothing_is_placed_without_the_rest_confirmed(
    client, localstripe, general_tier, cetirizine_tier
):
    cart = make_cart(tier=general_tier)
    cart.lines.create(tier=cetirizine_tier, packages=1, price_when_added=cetirizine_tier.price)
    attach(client, cart)
    figures = shown_figures(client)
    cetirizine_tier.stock = 0
    cetirizine_tier.save()

    response = pay(client, figures)
    assert response.status_code == 409
    changes = response.json()["changes"]
    assert (
        "Cetirizine 10mg, 30 pills: 1 pack at $9.00 → no longer available (sold out or withdrawn)"
        in changes
    )
    assert not Order.objects.exists()

    confirmed = pay(client, response.json()["figures"])
    assert confirmed.status_code == 200, confirmed.content
    order = Order.objects.get(number=confirmed.json()["order_number"])
    assert [line.product_name for line in order.lines.all()] == ["Loratadine"]


@pytest.mark.parametrize("figures", ["", "forged", "e30:1abc:xyz"])
def test_missing_or_forged_figures_place_nothing(client, localstripe, general_tier, figures):
    attach(client, make_cart(tier=general_tier))
    response = pay(client, figures)
    assert response.status_code == 409
    assert response.json()["figures"]
    assert not Order.objects.exists()
