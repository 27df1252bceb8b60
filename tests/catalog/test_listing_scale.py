"""The listing on a large catalogue: the page is cut first, then only its cards are priced.

Issue #9: computing "from $X per pill" for every published product before paginating made the
listing and search take over a second on 10,000 products. These tests pin what the customer sees
(the right price on every card of every page) and that the work per page no longer depends on
how many products there are.
"""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from djmoney.money import Money

from catalog import selectors
from catalog.views import PRODUCTS_PER_PAGE
from tests.catalog.html import parse
from tests.factories import CategoryFactory, DosageFactory, PackageTierFactory, ProductFactory

LISTING = "/products/"


def cards(response) -> dict[str, str]:
    assert response.status_code == 200
    return {
        card.find("h3").text: card.find(cls="product-card-price").text
        for card in parse(response.content).find_all("article", cls="product-card")
    }


@pytest.fixture
def shelf(db):
    """PRODUCTS_PER_PAGE + 6 products; product i's cheapest active pill is $(i + 1).05.

    Each has two strengths and an inactive cheaper pack, so the minimum must be taken across
    dosages and over active tiers only, per product.
    """
    category = CategoryFactory(slug="shelf")
    for i in range(PRODUCTS_PER_PAGE + 6):
        product = ProductFactory(
            name=f"Remedy {i:03d}",
            slug=f"remedy-{i:03d}",
            category=category,
            indications="common cold" if i % 2 else "migraine",
        )
        low = DosageFactory(product=product, strength="5mg", strength_value=Decimal("5"))
        high = DosageFactory(product=product, strength="10mg", strength_value=Decimal("10"))
        PackageTierFactory(
            dosage=low, quantity=10, price=Money(Decimal(i + 1) * 10 + Decimal("0.50"), "USD")
        )
        PackageTierFactory(dosage=high, quantity=20, price=Money(Decimal(i + 2) * 20, "USD"))
        PackageTierFactory(dosage=high, quantity=100, price=Money("1.00", "USD"), is_active=False)
    return category


def expected_price(i: int) -> str:
    return f"from ${i + 1}.05 per pill"


def test_every_page_prices_its_own_cards(client, shelf):
    first = cards(client.get(LISTING))
    second = cards(client.get(LISTING, {"page": 2}))
    assert len(first) == PRODUCTS_PER_PAGE and len(second) == 6
    for i in range(PRODUCTS_PER_PAGE + 6):
        page = first if i < PRODUCTS_PER_PAGE else second
        assert page[f"Remedy {i:03d}"] == expected_price(i)


def test_search_results_are_priced_and_counted(client, shelf):
    response = client.get(LISTING, {"q": "MIGRAINE"})
    found = cards(response)
    assert list(found) == [f"Remedy {i:03d}" for i in range(0, PRODUCTS_PER_PAGE + 6, 2)]
    assert all(price == expected_price(int(name.split()[1])) for name, price in found.items())
    assert "15 medicines" in parse(response.content).find(cls="result-count").text


def test_only_the_page_is_priced_and_the_count_does_not_join_tiers(client, shelf):
    """The tiers are read once per page, for that page's products only; counting ignores them."""
    for params in ({}, {"page": 2}, {"q": "cold"}, {"category": "shelf"}):
        with CaptureQueriesContext(connection) as captured:
            page_products = cards(client.get(LISTING, params))
        tier_queries = [
            q["sql"] for q in captured.captured_queries if "catalog_packagetier" in q["sql"]
        ]
        assert len(tier_queries) == 1, params
        # Counting (the listing index, once per change of the products) never joins the tiers either.
        others = [
            q["sql"] for q in captured.captured_queries if "catalog_packagetier" not in q["sql"]
        ]
        assert all("catalog_dosage" not in sql for sql in others)
        # The pricing query names exactly the products on the page.
        assert tier_queries[0].count(",") < len(page_products) + 12


def test_pricing_a_page_without_products_costs_nothing(django_assert_num_queries, db):
    with django_assert_num_queries(0):
        assert selectors.attach_from_prices([]) == []


def test_listing_costs_the_same_on_a_larger_catalogue(client, shelf, django_assert_max_num_queries):
    def count(params):
        with CaptureQueriesContext(connection) as captured:
            client.get(LISTING, params)
        return len(captured)

    small = [count(p) for p in ({}, {"page": 2}, {"q": "cold"})]
    for i in range(40):
        product = ProductFactory(
            name=f"Extra {i:03d}", slug=f"extra-{i:03d}", category=shelf, indications="cold"
        )
        PackageTierFactory(
            dosage=DosageFactory(product=product), quantity=30, price=Money("9.00", "USD")
        )
    assert [count(p) for p in ({}, {"page": 2}, {"q": "cold"})] == small
    with django_assert_max_num_queries(3):
        client.get(LISTING, {"page": 3})


@pytest.mark.django_db
def test_listing_and_search_indexes_exist():
    """The listing order index everywhere; trigram search indexes only where PostgreSQL has them."""
    with connection.cursor() as cursor:
        indexes = connection.introspection.get_constraints(cursor, "catalog_product")
    assert "catalog_product_listing_idx" in indexes
    trigram = {
        f"catalog_product_{c}_trgm"
        for c in ("name", "brand_names", "active_ingredient", "indications")
    }
    if connection.vendor == "postgresql":
        assert trigram <= set(indexes)
    else:
        assert not trigram & set(indexes)


@pytest.mark.django_db
def test_category_and_featured_indexes_exist():
    """A category's pages and the home page's featured products are read from indexes, not by a scan."""
    with connection.cursor() as cursor:
        indexes = connection.introspection.get_constraints(cursor, "catalog_product")
    assert indexes["catalog_product_cat_idx"]["columns"] == ["category_id", "name", "id"]
    assert indexes["catalog_product_featured_idx"]["columns"] == ["name"]
