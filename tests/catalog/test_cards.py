"""Product cards on the listing (``catalog/_product_card.html``): every legal class and price
state, text that must be escaped, a non-ASCII name."""

from decimal import Decimal

import pytest
from djmoney.money import Money

from catalog.models import DosageForm, LegalClass, Product
from tests.catalog.html import parse
from tests.factories import DosageFactory, PackageTierFactory, ProductFactory


@pytest.fixture
def assorted(db):
    """One product per legal class and price state, some with text that needs escaping."""
    made = []
    for i, legal_class in enumerate(LegalClass.values):
        for priced in (True, False):
            product = ProductFactory(
                name=f'<b>Pain & "relief"</b> {i}{"p" if priced else "u"}',
                slug=f"card-{i}-{int(priced)}",
                legal_class=legal_class,
                active_ingredient="ibuprofen <500mg>",
                summary="Takes 'minutes' & <hours>",
                dosage_form=DosageForm.values[i % len(DosageForm.values)],
                kind=Product.Kind.values[i % 2],
            )
            if priced:
                dosage = DosageFactory(product=product)
                PackageTierFactory(
                    dosage=dosage, quantity=30, price=Money(Decimal("1234.56") + i, "USD")
                )
                PackageTierFactory(
                    dosage=dosage, quantity=7, price=Money("99.00", "USD"), is_active=False
                )
            made.append(product)
    made.append(
        ProductFactory(name="Ácido fólico", slug="acido-folico", active_ingredient="ácido fólico")
    )
    return made


def test_cards_escape_and_price_through_the_listing(client, assorted):
    response = client.get("/products/")
    html = response.content.decode()
    assert "<b>Pain" not in html and "&lt;b&gt;Pain &amp; &quot;relief&quot;&lt;/b&gt;" in html
    found = {
        card.find("h3").text: card.find(cls="product-card-price").text.split()
        for card in parse(response.content).find_all("article", cls="product-card")
    }
    assert found['<b>Pain & "relief"</b> 0p'] == [
        "from",
        "$41.15",
        "per",
        "pill",
    ]  # 1,234.56 / 30; the cheaper pack is inactive
    assert found['<b>Pain & "relief"</b> 0u'] == ["Currently", "unavailable"]
    assert found['<b>Pain & "relief"</b> 3p'] == ["Information", "only,", "not", "sold", "online"]
    assert 'href="/products/acido-folico/"' in html


def test_every_card_links_to_its_product_page(client, assorted):
    html = client.get("/products/").content.decode()
    for product in assorted:
        assert f'href="{product.get_absolute_url()}"' in html
