"""The page cache keys on the query each page reads: junk cannot fill it, known parameters still count.

A scanner once left ~3,900 stored copies of a handful of pages, one per query string. Now the key
holds only the parameters a page reads, each in one spelling (``catalog.views.listing_query``),
and the page is rendered from that query, so what is stored is what its key says.
"""

import random

import pytest
from django.core.cache import cache
from django.test import Client
from djmoney.money import Money

from catalog import page_cache
from catalog.models import PackageTier
from tests.catalog.html import parse
from tests.catalog.test_cache_listing import shelf  # noqa: F401  (15 products, 2 a page: 8 pages)
from tests.factories import CategoryFactory, DosageFactory, PackageTierFactory, ProductFactory

pytestmark = pytest.mark.django_db


def stored_pages() -> int:
    return sum(1 for key in getattr(cache, "_cache", {}) if ":catalog:page:" in key)


@pytest.fixture(autouse=True)
def empty_page_cache():
    cache.clear()
    page_cache._local_pages.clear()
    yield
    page_cache._local_pages.clear()


def listing(client, query: str = ""):
    response = client.get("/products/" + query)
    assert response.status_code == 200, query
    cards = parse(response.content).find_all("article", cls="product-card")
    slugs = [card.find("a").attrs["href"].rstrip("/").rsplit("/", 1)[-1] for card in cards]
    return (
        response.headers.get("X-Catalog-Cache"),
        list(dict.fromkeys(slugs)),
        response.content.decode(),
    )


JUNK_NAMES = [
    "utm_source",
    "utm_campaign",
    "fbclid",
    "gclid",
    "debug",
    "id",
    "cmd",
    "x",
    "page[]",
    "Sort",
    "PAGE",
]
JUNK_VALUES = ["1", "../../etc/passwd", "<script>", "' OR 1=1", "²", "%00", "é" * 40, "true", ""]
#: Values of the parameters the listing reads: valid ones, and junk it treats like a valid one.
KNOWN = {
    "page": ["abc", "-3", "0", "99999", "²", "1", "2", " 2 ", "1e3", "", "٢"],
    "sort": ["price", "name", "PRICE", "junk", ""],
    "category": ["shelf", "nope", "x" * 300, ""],
    "rx": ["otc", "bogus", ""],
}


def junk_query(rng: random.Random) -> str:
    from urllib.parse import urlencode

    params = [
        (rng.choice(JUNK_NAMES) + str(rng.randrange(1000)), rng.choice(JUNK_VALUES))
        for _ in range(rng.randrange(1, 4))
    ]
    params += [(name, rng.choice(values)) for name, values in KNOWN.items() if rng.random() < 0.5]
    rng.shuffle(params)
    return "?" + urlencode(params)


def test_500_junk_query_strings_leave_a_bounded_number_of_copies(shelf):
    rng = random.Random(22)
    client = Client()
    for _ in range(500):
        query = junk_query(rng)
        path = rng.choice(["/", "/products/", "/products/", "/products/p-03/"])
        assert client.get(path + query).status_code == 200, path + query
    # Home and one product: one copy each. The listing: page 1, 2 or "past the end" (0, 99999 and
    # -3 show the last page; words and "1e3" page 1; "٢" is 2 to Python's int()), by sort (2),
    # category (all, shelf, unknown) and rx (all, otc, unknown): at most 3 x 2 x 3 x 3 = 54.
    assert stored_pages() <= 2 + 54
    print(f"500 junk requests: {stored_pages()} stored copies")


def test_a_known_parameter_still_varies_the_page(shelf):
    client = Client()
    _, first, _ = listing(client)
    _, second, _ = listing(client, "?page=2")
    assert first != second and len(second) == 2
    cheapest = PackageTier.objects.get(dosage__product__slug="p-14")
    cheapest.price = Money("1.00", "USD")
    cheapest.save()
    _, first, _ = listing(client)
    _, by_price, _ = listing(client, "?sort=price")
    assert by_price[0] == "p-14" and first[0] != "p-14"
    other = CategoryFactory(slug="other")
    PackageTierFactory(
        dosage=DosageFactory(product=ProductFactory(slug="lonely", category=other)),
        price=Money("3", "USD"),
    )
    assert listing(client, "?category=other")[1] == ["lonely"]
    assert "lonely" not in listing(client, "?category=shelf")[1]


@pytest.mark.parametrize(
    "same_as, spellings",
    [
        (
            "",
            [
                "?page=1",
                "?page=abc",
                "?page=1e3",
                "?sort=name",
                "?sort=bogus",
                "?q=%20%20",
                "?utm_source=x&fbclid=y",
                "?page=1&sort=",
            ],
        ),
        ("?page=2", ["?page=%202%20", "?page=2&gclid=z", "?page=%D9%A2"]),
        (
            "?page=0",
            ["?page=99999", "?page=-3", "?page=8"],
        ),  # past either end: the last page (8 of 8)
        ("?category=nope", ["?category=other-nope", "?category=" + "x" * 300]),
    ],
    ids=["default", "page-2", "last-page", "unknown-category"],
)
def test_spellings_the_listing_reads_alike_share_one_copy(shelf, same_as, spellings):
    client = Client()
    state, products, body = listing(client, same_as)
    assert state == "miss"
    for query in spellings:
        again = listing(client, query)
        if query == "?page=8":  # the real last page has its own key, and shows the same
            assert again[1] == products
            continue
        assert again[:2] == ("hit", products), query
    if "category" in same_as:
        assert "We could not find that category" in body
    assert stored_pages() == 1 + ("?page=8" in spellings)


def test_junk_in_the_address_is_never_echoed_into_a_stored_copy(shelf):
    """The copy is rendered from the query its key holds: a link or search box never carries junk
    (or the previous visitor's search) to the next visitor."""
    client = Client()
    _, _, body = listing(client, "?page=2&planted=marker123")
    assert "marker123" not in body and 'href="?page=3"' in body
    home = client.get("/?q=marker456").content.decode()
    assert "marker456" not in home
    assert "marker456" not in client.get("/").content.decode()
    _, _, searched = listing(client, "?q=cold&utm_source=marker789")
    assert 'value="cold"' in searched and "marker789" not in searched
