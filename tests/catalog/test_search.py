"""The listing: filters, search, pagination and the "from $X per pill" figure on each card."""

from decimal import Decimal

import pytest
from django.urls import reverse
from djmoney.money import Money

from catalog.models import LegalClass, PackageTier
from catalog.views import PRODUCTS_PER_PAGE
from tests.catalog.html import parse
from tests.factories import CategoryFactory, DosageFactory, PackageTierFactory, ProductFactory

LISTING = reverse("catalog:product_list")


def card_names(response) -> list[str]:
    assert response.status_code == 200
    return [h.text for h in parse(response.content).find_all("h3", cls="product-card-title")]


def card_price(response, name: str) -> str:
    for card in parse(response.content).find_all("article", cls="product-card"):
        if card.find("h3").text == name:
            return card.find(cls="product-card-price").text
    raise AssertionError(f"no card for {name}")


@pytest.fixture
def shelf(db):
    pain = CategoryFactory(name="Pain relief", slug="pain-relief")
    allergy = CategoryFactory(name="Allergy", slug="allergy")
    ProductFactory(
        name="Ibuprofen",
        slug="ibuprofen",
        category=pain,
        active_ingredient="ibuprofen",
        legal_class=LegalClass.GENERAL_SALE,
        indications="headache, back pain, fever",
    )
    ProductFactory(
        name="Nurofen Plus",
        slug="nurofen-plus",
        category=pain,
        active_ingredient="ibuprofen, codeine",
        legal_class=LegalClass.PHARMACY,
        indications="strong pain",
        brand_names="Nurofen",
    )
    ProductFactory(
        name="Celecoxib",
        slug="celecoxib",
        category=pain,
        active_ingredient="celecoxib",
        legal_class=LegalClass.PRESCRIPTION,
        indications="osteoarthritis, rheumatoid arthritis",
    )
    ProductFactory(
        name="Oxycodone",
        slug="oxycodone",
        category=pain,
        active_ingredient="oxycodone",
        legal_class=LegalClass.CONTROLLED,
        indications="severe pain",
    )
    ProductFactory(
        name="Cetirizine",
        slug="cetirizine",
        category=allergy,
        active_ingredient="cetirizine",
        legal_class=LegalClass.GENERAL_SALE,
        indications="hay fever, hives",
    )
    ProductFactory(
        name="Draft Pill",
        slug="draft-pill",
        category=allergy,
        is_published=False,
        indications="hay fever",
    )


def test_only_published_products_are_listed(client, shelf):
    assert card_names(client.get(LISTING)) == [
        "Celecoxib",
        "Cetirizine",
        "Ibuprofen",
        "Nurofen Plus",
        "Oxycodone",
    ]


def test_category_filter(client, shelf):
    response = client.get(LISTING, {"category": "allergy"})
    assert card_names(response) == ["Cetirizine"]
    assert parse(response.content).find("h1").text == "Allergy"


def test_unknown_category_is_explained_not_an_error(client, shelf):
    response = client.get(LISTING, {"category": "no-such-thing"})
    assert len(card_names(response)) == 5
    assert "could not find that category" in parse(response.content).find(cls="notice").text


@pytest.mark.parametrize(
    ("rx", "expected"),
    [
        ("prescription", ["Celecoxib"]),
        ("otc", ["Cetirizine", "Ibuprofen", "Nurofen Plus"]),
    ],
)
def test_legal_class_filter(client, shelf, rx, expected):
    assert card_names(client.get(LISTING, {"rx": rx})) == expected


def test_unknown_legal_class_filter_shows_everything_with_a_note(client, shelf):
    response = client.get(LISTING, {"rx": "anything"})
    assert len(card_names(response)) == 5
    assert "Unknown prescription filter" in parse(response.content).find(cls="notice").text


def test_filters_combine(client, shelf):
    assert card_names(
        client.get(LISTING, {"category": "pain-relief", "rx": "otc", "q": "ibuprofen"})
    ) == ["Ibuprofen", "Nurofen Plus"]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("cetiri", ["Cetirizine"]),  # by name, partial
        ("CELECOXIB", ["Celecoxib"]),  # case-insensitive
        ("codeine", ["Nurofen Plus"]),  # by active ingredient
        ("ibuprofen", ["Ibuprofen", "Nurofen Plus"]),
        ("hay fever", ["Cetirizine"]),  # by indication, every word must match
        ("arthritis", ["Celecoxib"]),
        ("nurofen", ["Nurofen Plus"]),  # by brand name
        ("pain fever", ["Ibuprofen"]),
        ("100%_off", []),  # LIKE wildcards are matched literally
    ],
)
def test_search(client, shelf, q, expected):
    assert card_names(client.get(LISTING, {"q": q})) == expected


def test_search_never_shows_unpublished_products(client, shelf):
    assert card_names(client.get(LISTING, {"q": "draft"})) == []


def test_empty_search_result_offers_help(client, shelf):
    response = client.get(LISTING, {"q": "unobtainium"})
    assert card_names(response) == []
    assert "No medicines match" in parse(response.content).find(cls="empty-state").text


def test_over_long_search_is_cut_not_refused(client, shelf):
    response = client.get(LISTING, {"q": "ibuprofen " + "x" * 300})
    assert response.status_code == 200
    assert "limited to 100 characters" in parse(response.content).find(cls="notice").text


def test_pagination(client, db):
    category = CategoryFactory()
    for i in range(PRODUCTS_PER_PAGE + 3):
        ProductFactory(name=f"Medicine {i:03d}", slug=f"medicine-{i:03d}", category=category)
    first = client.get(LISTING)
    assert len(card_names(first)) == PRODUCTS_PER_PAGE
    nav = parse(first.content).find("nav", cls="pagination")
    next_link = nav.find("a", rel="next").attrs["href"]
    second = client.get(LISTING + next_link)
    assert card_names(second) == ["Medicine 024", "Medicine 025", "Medicine 026"]
    assert parse(second.content).find("nav", cls="pagination").find("a", rel="next") is None
    # Out of range or nonsense page numbers still give a page, not an error.
    assert card_names(client.get(LISTING, {"page": "99"})) == card_names(second)
    assert len(card_names(client.get(LISTING, {"page": "abc"}))) == PRODUCTS_PER_PAGE


def test_pagination_keeps_the_filters(client, db):
    category = CategoryFactory(slug="vitamins")
    for i in range(PRODUCTS_PER_PAGE + 1):
        ProductFactory(name=f"Vitamin {i:03d}", slug=f"vitamin-{i:03d}", category=category)
    ProductFactory(name="Vitamin elsewhere", slug="vitamin-elsewhere")
    first = client.get(LISTING, {"category": "vitamins", "q": "vitamin"})
    next_link = parse(first.content).find("a", rel="next").attrs["href"]
    assert "category=vitamins" in next_link and "q=vitamin" in next_link
    assert card_names(client.get(LISTING + next_link)) == [f"Vitamin {PRODUCTS_PER_PAGE:03d}"]


# --- "from $X per pill" -------------------------------------------------------------------------


def test_from_price_is_the_baclofen_best_pill(client, baclofen):
    assert card_price(client.get(LISTING), "Baclofen") == "from $0.61 per pill"


def test_from_price_uses_only_active_tiers(client, baclofen):
    # Without the 360 pack (0.6076 a pill) the cheapest 10mg pill is the 270 pack at 0.6243.
    PackageTier.objects.filter(dosage__strength="10mg", quantity=360).update(is_active=False)
    assert card_price(client.get(LISTING), "Baclofen") == "from $0.62 per pill"


def test_from_price_is_rounded_half_up(client, db):
    dosage = DosageFactory(product__name="Halfway", product__slug="halfway")
    PackageTierFactory(dosage=dosage, quantity=2, price=Money("1.21", "USD"))  # 0.605 a pill
    PackageTierFactory(dosage=dosage, quantity=1, price=Money("0.90", "USD"), is_active=False)
    assert card_price(client.get(LISTING), "Halfway") == "from $0.61 per pill"


def test_from_price_compares_across_dosages(client, db):
    product = ProductFactory(name="Two strengths", slug="two-strengths")
    PackageTierFactory(
        dosage=DosageFactory(product=product, strength="10mg", strength_value=Decimal("10")),
        quantity=30,
        price=Money("30.00", "USD"),
    )
    PackageTierFactory(
        dosage=DosageFactory(product=product, strength="5mg", strength_value=Decimal("5")),
        quantity=100,
        price=Money("45.00", "USD"),
    )
    assert card_price(client.get(LISTING), "Two strengths") == "from $0.45 per pill"


def test_product_without_active_tiers_is_listed_as_unavailable(client, baclofen):
    PackageTier.objects.update(is_active=False)
    assert card_price(client.get(LISTING), "Baclofen") == "Currently unavailable"


def test_controlled_product_is_listed_as_information_only(client, db):
    PackageTierFactory(
        dosage__product__name="Oxycodone", dosage__product__legal_class=LegalClass.CONTROLLED
    )
    response = client.get(LISTING)
    assert card_price(response, "Oxycodone") == "Information only, not sold online"
    assert (
        "Controlled substance" in parse(response.content).find("article", cls="product-card").text
    )
