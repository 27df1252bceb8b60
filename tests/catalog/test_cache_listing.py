"""The listing's totals and late pages (catalog.selectors.listing_index): right on every page, kept
until the products change, and not recomputed for a price or stock change."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from djmoney.money import Money

from catalog import selectors, views
from catalog.models import PackageTier, Product
from tests.catalog.html import parse
from tests.factories import CategoryFactory, DosageFactory, PackageTierFactory, ProductFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def shelf(monkeypatch):
    """15 products, some with the same name (ordered by id then), 2 per page, a mark every 2 pages."""
    monkeypatch.setattr(views, "PRODUCTS_PER_PAGE", 2)
    monkeypatch.setattr(selectors, "MARK_EVERY_PAGES", 2)
    category = CategoryFactory(slug="shelf")
    names = [
        "Alpha",
        "Beta",
        "Beta",
        "Beta",
        "Gamma",
        "Delta",
        "Delta",
        "Epsilon",
        "Zeta",
        "Eta",
        "Theta",
        "Iota",
        "Kappa",
        "Kappa",
        "Lambda",
    ]
    for i, name in enumerate(names):
        product = ProductFactory(
            name=name, slug=f"p-{i:02d}", category=category, indications="cold"
        )
        PackageTierFactory(
            dosage=DosageFactory(product=product), quantity=30, price=Money("9.00", "USD")
        )
    return category


def slugs_on(client, params) -> list[str]:
    cards = parse(client.get("/products/", params).content).find_all("article", cls="product-card")
    return [card.find("a").attrs["href"].rstrip("/").rsplit("/", 1)[-1] for card in cards]


def expected(**filters) -> list[str]:
    return list(
        Product.objects.published()
        .filter(**filters)
        .order_by("name", "pk")
        .values_list("slug", flat=True)
    )


def test_every_page_shows_the_right_products_in_order(client, shelf):
    order = expected()
    seen = []
    for number in range(1, 9):
        page = list(dict.fromkeys(slugs_on(client, {"page": number})))
        assert page == order[(number - 1) * 2 : number * 2], number
        seen += page
    assert seen == order
    assert (
        list(dict.fromkeys(slugs_on(client, {"page": 99}))) == order[-1:]
    )  # past the end: the last page


def test_late_search_pages_are_right_too(client, shelf):
    order = expected(indications__icontains="cold")
    for number in range(1, 9):
        assert (
            list(dict.fromkeys(slugs_on(client, {"q": "cold", "page": number})))
            == order[(number - 1) * 2 : number * 2]
        )


def index_reads(client, params) -> int:
    """Queries reading the matches' (name, id) for the listing index."""
    from django.core.cache import cache

    cache.delete_many(
        [k for k in getattr(cache, "_cache", {}) if ":catalog:page:" in k]
    )  # pages only
    with CaptureQueriesContext(connection) as captured:
        client.get("/products/", params)
    return sum(
        1
        for q in captured.captured_queries
        if q["sql"].startswith('SELECT "catalog_product"."name"') and "LIMIT" not in q["sql"]
    )


def test_the_index_is_kept_across_price_and_stock_changes_and_redone_when_products_change(
    client, shelf
):
    assert index_reads(client, {"page": 3}) == 1
    assert index_reads(client, {"page": 4}) == 0
    PackageTier.objects.update(price=Money("8.00", "USD"), stock=5)
    assert index_reads(client, {"page": 3}) == 0
    Product.objects.filter(slug="p-00").update(is_published=False)
    assert index_reads(client, {"page": 3}) == 1
    assert list(dict.fromkeys(slugs_on(client, {"page": 1}))) == expected()[:2]
    renamed = Product.objects.get(slug="p-14")
    renamed.name = "Aardvark"
    renamed.save()
    assert slugs_on(client, {"page": 1})[0] == "p-14"


def category_counts(client, url="/products/") -> tuple[int, dict[str, str]]:
    """(queries counting the categories' products, the category options of the filter form)."""
    from django.core.cache import cache

    cache.delete_many(
        [k for k in getattr(cache, "_cache", {}) if ":catalog:page:" in k]
    )  # pages only
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    counted = sum(
        1
        for q in captured.captured_queries
        if 'FROM "catalog_category"' in q["sql"] and "COUNT(" in q["sql"]
    )
    select = parse(response.content).find(
        id="filter-category"
    )  # the listing's filter form (not on home)
    return counted, {o.attrs["value"]: o.text for o in select.find_all("option")} if select else {}


def test_category_counts_are_kept_across_price_and_stock_changes_and_redone_when_products_change(
    client, shelf
):
    """Counting the categories reads every product: not again for each stock move of a checkout."""
    assert category_counts(client)[0] == 1
    assert category_counts(client)[0] == 0
    PackageTier.objects.update(price=Money("8.00", "USD"), stock=5)
    tier = PackageTier.objects.first()
    tier.stock = 4
    tier.save()
    assert category_counts(client)[0] == 0
    assert category_counts(client, "/")[0] == 0
    other = CategoryFactory(slug="other", name="Other remedies")
    counted, options = category_counts(client)
    assert counted == 1 and "other" not in options  # no published product in it yet: not offered
    moved = Product.objects.get(slug="p-00")
    moved.category = other
    moved.save()
    counted, options = category_counts(client)
    assert counted == 1 and options["other"] == "Other remedies"
    other.name = "Other medicines"
    other.save()
    counted, options = category_counts(client)
    assert counted == 1 and options["other"] == "Other medicines"
    Product.objects.filter(slug="p-00").update(is_published=False)
    counted, options = category_counts(client)
    assert counted == 1 and "other" not in options


def test_price_order_takes_its_total_from_the_listing_index(client, shelf):
    """Sorted by price, the total is the listing index's (no count of the grouped query per request),
    and an index first computed by a price-sorted request serves the name order's late pages right."""
    for i, tier in enumerate(PackageTier.objects.order_by("-dosage__product__slug")):
        tier.price = Money(10 + i, "USD")
        tier.save()
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/products/", {"sort": "price", "page": 3})
    assert not [
        q["sql"] for q in captured.captured_queries if q["sql"].startswith("SELECT COUNT(")
    ]  # the paginator's
    assert "15 medicines" in parse(response.content).find(cls="result-count").text
    by_price = list(Product.objects.published().order_by("-slug").values_list("slug", flat=True))
    assert list(dict.fromkeys(slugs_on(client, {"sort": "price", "page": 3}))) == by_price[4:6]
    assert index_reads(client, {"sort": "price", "page": 5}) == 0
    order = expected()
    for number in range(1, 9):
        assert (
            list(dict.fromkeys(slugs_on(client, {"page": number})))
            == order[(number - 1) * 2 : number * 2]
        )
