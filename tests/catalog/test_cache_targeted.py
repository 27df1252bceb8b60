"""The page cache retires exactly what a write changed (catalog/page_cache.py, "what a write retires").

A busy shop moves stock with every order: those moves must leave the cached pages alone unless a
pack goes out of (or back into) stock, and a staff change must still show on the very next
request, on any server, in any configuration. Each test reads pages as a visitor does, and the
``X-Catalog-Cache`` header says whether a page was served from the cache ("hit") or rendered.
"""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal

import pytest
import redis
import requests
from django.db import transaction
from django.db.models import F
from django.test import Client
from djmoney.money import Money

from catalog import page_cache
from catalog.models import InfoSection, PackageTier, Product
from pharmacy.settings import redis_caches
from tests.catalog.test_cache import (
    PRODUCT,
    REDIS_URL,
    ROOT,
    _same_but_tokens,
    cache_state,
    get,
    html,
    redis_or_skip,
    redis_pages,  # noqa: F401  (a fixture)
    tier,
)
from tests.factories import DosageFactory, PackageTierFactory, ProductFactory
from tests.live_gunicorn import Gunicorn, database_url, server_env

OTHER = "/products/other-medicine/"
LISTINGS = ["/", "/products/", "/products/?q=baclofen", "/products/?category=muscle-and-joint"]


@pytest.fixture
def shop(baclofen):
    """Baclofen (featured, so on the home page too) and an unrelated medicine with one pack."""
    Product.objects.filter(pk=baclofen.pk).update(is_featured=True)
    other = ProductFactory(name="Other medicine", slug="other-medicine", is_featured=True)
    PackageTierFactory(
        dosage=DosageFactory(product=other), quantity=30, price=Money("9.00", "USD"), sku="OTH-30"
    )
    return baclofen


def cached(client, urls) -> dict[str, str]:
    """Each page's state for a visitor now: "hit" (served from the cache) or "miss" (rendered)."""
    return {url: cache_state(get(client, url)) for url in urls}


def warm(client, urls) -> None:
    for url in urls:
        get(client, url)
    assert set(cached(client, urls).values()) == {"hit"}


EVERY_PAGE = [PRODUCT, OTHER, *LISTINGS]


# --- What a write retires (each write committed, as in production) ----------------------------


@pytest.mark.django_db(transaction=True)
def test_a_price_change_retires_the_products_page_and_the_listings_only(client, shop):
    warm(client, EVERY_PAGE)
    # At $45.00 the 90-pill pack of 10 mg becomes Baclofen's cheapest pill, shown on the listings.
    PackageTier.objects.filter(sku="BAC-10MG-90").update(price=Decimal("45.00"))
    states = cached(client, EVERY_PAGE)
    assert states[OTHER] == "hit"  # an unrelated medicine's page is kept
    assert {states[url] for url in [PRODUCT, *LISTINGS]} == {"miss"}
    assert "$45.00" in html(get(client))
    assert "$0.50" in html(get(client, "/products/?q=baclofen"))  # from $0.50 per pill


@pytest.mark.django_db(transaction=True)
def test_a_price_change_that_leaves_the_cheapest_pill_keeps_the_listings(client, shop):
    warm(client, EVERY_PAGE)
    listing_before = html(get(client, "/products/?q=baclofen"))
    pack = tier("BAC-10MG-60")  # still dearer per pill than the 360-pill pack
    pack.price = Money("40.00", "USD")
    pack.save()
    states = cached(client, EVERY_PAGE)
    assert states == {**{url: "hit" for url in EVERY_PAGE}, PRODUCT: "miss"}
    assert "$40.00" in html(get(client))
    assert _same_but_tokens(html(get(client, "/products/?q=baclofen")), listing_before)


@pytest.mark.django_db(transaction=True)
def test_patient_information_retires_only_its_products_page(client, shop):
    warm(client, EVERY_PAGE)
    InfoSection.objects.create(product=shop, heading="How it works", body="It relaxes muscles.")
    assert cached(client, EVERY_PAGE) == {**{url: "hit" for url in EVERY_PAGE}, PRODUCT: "miss"}
    assert "It relaxes muscles." in html(get(client))


@pytest.mark.django_db(transaction=True)
def test_a_renamed_product_retires_its_page_and_every_listing_but_not_other_pages(client, shop):
    warm(client, EVERY_PAGE)
    shop.name = "Baclofen Forte"
    shop.save()
    states = cached(client, EVERY_PAGE)
    assert states[OTHER] == "hit"
    assert {states[url] for url in [PRODUCT, *LISTINGS]} == {"miss"}
    assert "Baclofen Forte" in html(get(client, "/products/"))


@pytest.mark.django_db(transaction=True)
def test_a_product_moved_to_a_new_address_leaves_nothing_at_the_old_one(client, shop):
    warm(client, EVERY_PAGE)
    shop.slug = "baclofen-tablets"
    shop.save()
    assert client.get(PRODUCT).status_code == 404
    assert "Baclofen" in html(get(client, "/products/baclofen-tablets/"))
    assert cache_state(get(client, OTHER)) == "hit"


# --- Stock moves --------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_stock_moves_that_leave_a_pack_in_stock_keep_every_page_cached(client, shop):
    PackageTier.objects.filter(sku="BAC-10MG-90").update(stock=5)
    warm(client, EVERY_PAGE)
    taken = PackageTier.objects.filter(sku="BAC-10MG-90", stock__gte=2).update(stock=F("stock") - 2)
    given_back = PackageTier.objects.filter(sku="BAC-10MG-90").update(stock=F("stock") + 1)
    PackageTier.objects.filter(sku="BAC-10MG-30").update(stock=F("stock") - 1)  # untracked
    assert (taken, given_back) == (1, 1)
    assert tier("BAC-10MG-90").stock == 4
    assert cached(client, EVERY_PAGE) == {url: "hit" for url in EVERY_PAGE}


@pytest.mark.django_db(transaction=True)
def test_an_order_that_takes_stock_but_leaves_some_keeps_every_page_cached(
    client, localstripe, shop
):
    from tests.orders.conftest import make_cart, place
    from tests.prescriptions.prescription_support import authorise

    pack = tier("BAC-10MG-90")
    PackageTier.objects.filter(pk=pack.pk).update(stock=3)
    warm(client, EVERY_PAGE)
    authorise(localstripe, place(make_cart(tier=pack)))  # the card hold takes one of three
    assert tier("BAC-10MG-90").stock == 2
    assert cached(client, EVERY_PAGE) == {url: "hit" for url in EVERY_PAGE}


@pytest.mark.django_db(transaction=True)
def test_the_last_pack_sold_retires_its_products_page_alone(client, shop):
    PackageTier.objects.filter(sku="BAC-10MG-90").update(stock=1)
    warm(client, EVERY_PAGE)
    assert "Out of stock" not in html(get(client))
    PackageTier.objects.filter(sku="BAC-10MG-90", stock__gte=1).update(stock=F("stock") - 1)
    assert cached(client, EVERY_PAGE) == {**{url: "hit" for url in EVERY_PAGE}, PRODUCT: "miss"}
    assert "Out of stock" in html(get(client))
    PackageTier.objects.filter(sku="BAC-10MG-90").update(stock=F("stock") + 1)  # given back
    assert "Out of stock" not in html(get(client))


@pytest.mark.django_db(transaction=True)
def test_a_stock_move_inside_a_transaction_retires_once_on_commit(client, shop, monkeypatch):
    PackageTier.objects.filter(sku__in=["BAC-10MG-90", "BAC-20MG-90"]).update(stock=1)
    warm(client, EVERY_PAGE)
    replaced: list[set[str]] = []
    real = page_cache._replace
    monkeypatch.setattr(
        page_cache, "_replace", lambda keys: (replaced.append(set(keys)), real(keys))
    )
    with transaction.atomic():
        for sku in ("BAC-10MG-90", "BAC-20MG-90"):  # an order of two packs, each the last one
            PackageTier.objects.filter(sku=sku, stock__gte=1).update(stock=F("stock") - 1)
        assert replaced == []  # other servers still see the old rows until the commit
        assert cache_state(get(client)) == "hit"
    assert replaced == [{page_cache.product_generation_key("baclofen")}]
    assert "Out of stock" in html(get(client))


@pytest.mark.django_db(transaction=True)
def test_a_stock_move_rolled_back_retires_nothing(client, shop):
    PackageTier.objects.filter(sku="BAC-10MG-90").update(stock=1)
    warm(client, EVERY_PAGE)
    with pytest.raises(RuntimeError), transaction.atomic():
        PackageTier.objects.filter(sku="BAC-10MG-90").update(stock=0)
        raise RuntimeError
    assert cached(client, EVERY_PAGE) == {url: "hit" for url in EVERY_PAGE}
    assert "Out of stock" not in html(get(client))


# --- Without Redis: pages per process, generations in the database -------------------------------

CHANGE_PRICE = """
import sys, django
django.setup()
from decimal import Decimal
from catalog.models import PackageTier
PackageTier.objects.filter(sku=sys.argv[1]).update(price=Decimal(sys.argv[2]))
"""


def another_process(*args: str) -> None:
    """A management command, a Celery task or another gunicorn worker: its own process and memory."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("REDIS_URL", "CACHE_REDIS_URL")
    }
    env.update(
        DATABASE_URL=database_url(), DJANGO_SETTINGS_MODULE="pharmacy.settings", LOG_LEVEL="ERROR"
    )
    result = subprocess.run(
        [sys.executable, "-c", CHANGE_PRICE, *args],
        cwd=ROOT,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.django_db(transaction=True)
def test_without_redis_a_price_changed_by_another_process_shows_on_the_next_request(client, shop):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the other process needs PostgreSQL")
    warm(client, [PRODUCT, OTHER])
    assert "$68.23" in html(get(client))
    another_process("BAC-10MG-90", "61.00")
    body = html(get(client))
    assert "$61.00" in body and "$68.23" not in body
    assert cache_state(get(client, OTHER)) == "hit"


# --- With Redis: one round trip per hit; two servers agree at once --------------------------------


def redis_calls(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name: value["calls"] for name, value in stats.items() if name != "cmdstat_info"}


@pytest.mark.django_db
@pytest.mark.parametrize("url", [PRODUCT, "/products/?category=muscle-and-joint&page=1", "/"])
def test_a_hit_asks_redis_once(redis_pages, shop, url):
    visitor = Client()
    get(visitor, url)
    assert cache_state(get(visitor, url)) == "hit"
    counter = redis.Redis.from_url(REDIS_URL)
    before = redis_calls(counter)
    assert cache_state(get(visitor, url)) == "hit"
    after = redis_calls(counter)
    asked = {name: after[name] - before.get(name, 0) for name in after}
    assert {name: count for name, count in asked.items() if count} == {"cmdstat_mget": 1}


@pytest.fixture
def two_servers(tmp_path, settings):
    """Two gunicorn servers sharing the database and Redis, as behind a load balancer; this test
    process writes with the same cache settings (another server, a worker, the admin)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the servers need PostgreSQL")
    redis_or_skip()
    redis.Redis.from_url(REDIS_URL).flushdb()
    settings.CACHES = redis_caches(REDIS_URL)
    settings.CATALOG_PAGE_CACHE_ALIAS = "pages"
    page_cache._local_pages.clear()
    env = server_env(REDIS_URL=REDIS_URL, WEB_CONCURRENCY="1")
    servers = [Gunicorn(env=env, log=tmp_path / f"server-{n}.log") for n in "ab"]
    try:
        for server in servers:
            server.wait_ready()
        yield servers
    finally:
        for server in servers:
            server.stop()
        redis.Redis.from_url(REDIS_URL).flushdb()
        page_cache._local_pages.clear()


def served(server, path: str = PRODUCT) -> tuple[str, str]:
    response = requests.get(server.base + path, timeout=30)
    assert response.status_code == 200, response.status_code
    return response.headers.get("X-Catalog-Cache"), response.text


@pytest.mark.django_db(transaction=True)
def test_the_last_pack_sold_shows_out_of_stock_on_the_next_request_on_every_server(
    two_servers, localstripe, shop
):
    from tests.orders.conftest import make_cart, place
    from tests.prescriptions.prescription_support import authorise

    a, b = two_servers
    pack = tier("BAC-10MG-90")
    PackageTier.objects.filter(pk=pack.pk).update(stock=2)
    for server in (a, b):
        served(server)
        served(server, OTHER)
    assert [served(server)[0] for server in (a, b)] == ["hit", "hit"]
    authorise(localstripe, place(make_cart(tier=pack)))  # one of two: still in stock
    for server in (a, b):
        state, body = served(server)
        assert state == "hit" and "Out of stock" not in body, server.base
    authorise(localstripe, place(make_cart(tier=pack)))  # the last one
    for server in (a, b):
        state, body = served(server)
        assert "Out of stock" in body, server.base
    assert [served(server, OTHER)[0] for server in (a, b)] == ["hit", "hit"]
