"""Product cards rendered in Python (catalog.cards) are exactly what the card template rendered.

The template below is the card template the shop used before (``catalog/_product_card.html``);
every kind of card (each legal class, priced, unavailable, controlled, with text that must be
escaped, with a non-ASCII name) must come out byte for byte the same through the listing.
"""
from decimal import Decimal

import pytest
from django.template import engines
from djmoney.money import Money

from catalog import cards, selectors
from catalog.models import DosageForm, LegalClass, Product
from tests.catalog.html import parse
from tests.factories import DosageFactory, PackageTierFactory, ProductFactory

TEMPLATE_CARD = """{% load catalog_tags %}<article class="product-card">
  <h3 class="product-card-title"><a href="{{ product.get_absolute_url }}">{{ product.name }}</a></h3>
  <p class="product-card-meta">{{ product.active_ingredient|capfirst }} · {{ product.get_dosage_form_display }} · {{ product.get_kind_display }}</p>
  {% include "catalog/_legal_badge.html" %}
  <p class="product-card-summary">{{ product.summary }}</p>
  <p class="product-card-price">
    {% if product.is_controlled %}
      <span class="muted">Information only, not sold online</span>
    {% elif product.from_per_pill is not None %}
      from <strong>{{ product.from_per_pill|money }}</strong> per pill
    {% else %}
      <span class="muted">Currently unavailable</span>
    {% endif %}
  </p>
</article>
"""


@pytest.fixture
def assorted(db):
    """One product per legal class and price state, some with text that needs escaping."""
    made = []
    for i, legal_class in enumerate(LegalClass.values):
        for priced in (True, False):
            product = ProductFactory(
                name=f"<b>Pain & \"relief\"</b> {i}{'p' if priced else 'u'}", slug=f"card-{i}-{int(priced)}",
                legal_class=legal_class, active_ingredient="ibuprofen <500mg>", summary="Takes 'minutes' & <hours>",
                dosage_form=DosageForm.values[i % len(DosageForm.values)], kind=Product.Kind.values[i % 2],
            )
            if priced:
                dosage = DosageFactory(product=product)
                PackageTierFactory(dosage=dosage, quantity=30, price=Money(Decimal("1234.56") + i, "USD"))
                PackageTierFactory(dosage=dosage, quantity=7, price=Money("99.00", "USD"), is_active=False)
            made.append(product)
    made.append(ProductFactory(name="Ácido fólico", slug="acido-folico", active_ingredient="ácido fólico"))
    return made


def test_python_cards_are_the_template_cards(assorted):
    template = engines["django"].from_string(TEMPLATE_CARD)
    products = selectors.priced_cards(selectors.card_queryset().order_by("name", "pk"))
    assert len(products) == len(assorted)
    expected = "".join(template.render({"product": product}) for product in products)
    assert cards.product_cards(products) == expected


def test_cards_escape_and_price_through_the_listing(client, assorted):
    response = client.get("/products/")
    html = response.content.decode()
    assert "<b>Pain" not in html and "&lt;b&gt;Pain &amp; &quot;relief&quot;&lt;/b&gt;" in html
    found = {
        card.find("h3").text: card.find(cls="product-card-price").text.split()
        for card in parse(response.content).find_all("article", cls="product-card")
    }
    assert found['<b>Pain & "relief"</b> 0p'] == ["from", "$41.15", "per", "pill"]  # 1,234.56 / 30; the cheaper pack is inactive
    assert found['<b>Pain & "relief"</b> 0u'] == ["Currently", "unavailable"]
    assert found['<b>Pain & "relief"</b> 3p'] == ["Information", "only,", "not", "sold", "online"]
    assert 'href="/products/acido-folico/"' in html


def test_card_links_follow_the_url_configuration(assorted):
    products = selectors.priced_cards(selectors.card_queryset())
    html = cards.product_cards(products)
    for product in products:
        assert f'href="{product.get_absolute_url()}"' in html
