"""Catalog invariants the database itself enforces, whatever the admin or an import does."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from djmoney.money import Money

from catalog.models import Dosage, PackageTier, StrengthUnit
from tests.factories import DosageFactory, PackageTierFactory, ProductFactory

pytestmark = pytest.mark.django_db


def fails_in_db(make):
    with pytest.raises(IntegrityError), transaction.atomic():
        make()


@pytest.mark.parametrize("quantity", [0])
def test_tier_quantity_must_be_positive(quantity):
    dosage = DosageFactory()
    fails_in_db(
        lambda: PackageTier.objects.create(
            dosage=dosage, quantity=quantity, price=Money("5", "USD"), sku="Q0"
        )
    )
    assert not PackageTier.objects.exists()


@pytest.mark.parametrize("price", ["0", "-1.00"])
def test_tier_price_must_be_positive(price):
    dosage = DosageFactory()
    fails_in_db(
        lambda: PackageTier.objects.create(
            dosage=dosage, quantity=30, price=Money(price, "USD"), sku="P0"
        )
    )
    assert not PackageTier.objects.exists()


def test_one_tier_per_quantity_per_dosage():
    tier = PackageTierFactory(quantity=30)
    fails_in_db(lambda: PackageTierFactory(dosage=tier.dosage, quantity=30))
    # The same pack size of another dosage is fine.
    other = DosageFactory(
        product=tier.dosage.product, strength="20mg", strength_value=Decimal("20")
    )
    PackageTierFactory(dosage=other, quantity=30)
    assert PackageTier.objects.filter(quantity=30).count() == 2


def test_one_dosage_per_strength_per_product():
    dosage = DosageFactory(strength="10mg", strength_value=Decimal("10"))
    fails_in_db(
        lambda: DosageFactory(product=dosage.product, strength="10mg", strength_value=Decimal("10"))
    )
    DosageFactory(
        strength="10mg", strength_value=Decimal("10")
    )  # another product may sell 10mg too
    assert Dosage.objects.filter(strength="10mg").count() == 2


def test_dosage_list_price_must_be_positive():
    fails_in_db(lambda: DosageFactory(list_price_per_pill=Money("0", "USD")))


def test_dosages_are_ordered_by_real_strength_across_units():
    product = ProductFactory()
    strengths = [
        ("1", StrengthUnit.G),
        ("250", StrengthUnit.MG),
        ("1", StrengthUnit.MG),
        ("500", StrengthUnit.MCG),
    ]
    for value, unit in strengths:
        DosageFactory(
            product=product,
            strength=f"{value}{unit}",
            strength_value=Decimal(value),
            strength_unit=unit,
        )
    assert [d.strength for d in product.dosages.all()] == ["500mcg", "1mg", "250mg", "1g"]
    micrograms = list(product.dosages.values_list("strength_micrograms", flat=True))
    assert micrograms == [Decimal("500"), Decimal("1000"), Decimal("250000"), Decimal("1000000")]


def test_product_page_orders_dosages_by_strength_too(client):
    product = ProductFactory(slug="ordered")
    for value, unit in [("1", StrengthUnit.G), ("500", StrengthUnit.MCG), ("1", StrengthUnit.MG)]:
        dosage = DosageFactory(
            product=product,
            strength=f"{value}{unit}",
            strength_value=Decimal(value),
            strength_unit=unit,
        )
        PackageTierFactory(dosage=dosage)
    body = client.get("/products/ordered/").content.decode()
    assert body.index("<caption>500mcg") < body.index("<caption>1mg") < body.index("<caption>1g")
