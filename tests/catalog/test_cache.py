"""The catalog page cache (catalog/page_cache.py): fast hits, exact invalidation, per-visitor holes.

Every test reads pages the way a visitor would and checks what a visitor would notice: a changed
price, an unpublished medicine, stock, a token that works, a cart count that is theirs.
"""

from __future__ import annotations

import gzip
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
import redis
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from djmoney.money import Money

from catalog import page_cache
from catalog.models import FAQ, InfoSection, PackageTier, Product
from catalog.services import PriceChangeMode, tiers_bulk_change_prices
from pharmacy.settings import redis_caches
from tests.catalog.test_admin import dosage_10mg, inline_post_data, tier_index
from tests.catalog.test_csv_import_export import confirm, export_csv, rows_of, to_csv, upload
from tests.factories import UserFactory
from tests.resources import redis_url

ROOT = Path(__file__).resolve().parent.parent.parent
PRODUCT = "/products/baclofen/"
TOKEN_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def get(client, url=PRODUCT, **headers):
    response = client.get(url, **headers)
    assert response.status_code == 200, response.status_code
    return response


def html(response) -> str:
    return response.content.decode()


def cache_state(response) -> str | None:
    return response.headers.get("X-Catalog-Cache")


def tier(sku: str) -> PackageTier:
    return PackageTier.objects.get(sku=sku)


@pytest.fixture
def superuser(db):
    return UserFactory(email="boss@pharmacy.example", is_staff=True, is_superuser=True)


@pytest.fixture
def redis_pages(settings):
    """This process with the production cache settings (REDIS_URL set): pages and generations in Redis."""
    redis_or_skip()
    redis.Redis.from_url(REDIS_URL).flushdb()
    settings.CACHES = redis_caches(REDIS_URL)
    settings.CATALOG_PAGE_CACHE_ALIAS = "pages"
    page_cache._local_pages.clear()
    yield
    redis.Redis.from_url(REDIS_URL).flushdb()
    page_cache._local_pages.clear()


# --- Hits ---------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    ["/", "/products/", "/products/?q=baclofen", "/products/?category=muscle-and-joint", PRODUCT],
)
def test_second_visit_is_a_cache_hit_with_one_query_for_the_generations(client, baclofen, url):
    """Without Redis the pages stay in each process, and whether they are still right is read
    from the database (one indexed query): a price saved by another process must reach them."""
    assert cache_state(get(client, url)) == "miss"
    with CaptureQueriesContext(connection) as captured:
        response = get(client, url)
    assert cache_state(response) == "hit"
    # Anonymous visitor without a cart: not even the session is read; only the generations.
    assert [q["sql"] for q in captured.captured_queries] == [
        q["sql"] for q in captured.captured_queries if '"catalog_pagegeneration"' in q["sql"]
    ]
    assert len(captured) == 1
    assert "Baclofen" in html(response) or url == "/"  # (not featured on the home page)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    ["/", "/products/", "/products/?q=baclofen", "/products/?category=muscle-and-joint", PRODUCT],
)
def test_second_visit_with_redis_is_a_cache_hit_without_queries(redis_pages, client, baclofen, url):
    assert cache_state(get(client, url)) == "miss"
    with CaptureQueriesContext(connection) as captured:
        response = get(client, url)
    assert cache_state(response) == "hit"
    assert len(captured) == 0  # anonymous visitor without a cart: not even the session is read
    assert "Baclofen" in html(response) or url == "/"


@pytest.mark.django_db
@pytest.mark.parametrize("with_redis", [False, True], ids=["database-generations", "redis"])
def test_hit_budget_for_a_signed_in_customer_with_a_cart(
    request, client, baclofen, customer, with_redis
):
    if with_redis:
        request.getfixturevalue("redis_pages")
    client.force_login(customer)
    client.post(reverse("cart:add"), {"tier_id": tier("BAC-10MG-90").pk, "packages": 1})
    get(client)
    with CaptureQueriesContext(connection) as captured:
        response = get(client)
    assert cache_state(response) == "hit"
    # Session, user, cart count (and without Redis the generations): the page itself costs nothing.
    assert len(captured) <= (3 if with_redis else 4)
    assert 'class="cart-count">1<' in html(response)


# --- Invalidation -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_price_change_in_the_admin_shows_on_the_next_request(client, superuser, baclofen):
    visitor = Client()
    assert "$68.23" in html(get(visitor))
    client.force_login(superuser)
    dosage = dosage_10mg(baclofen)
    client.post(
        reverse("admin:catalog_dosage_change", args=[dosage.pk]),
        inline_post_data(dosage, {f"tiers-{tier_index(dosage, 90)}-price_0": "63.00"}),
    )
    body = html(get(visitor))
    assert "$63.00" in body and "$68.23" not in body


@pytest.mark.django_db
def test_bulk_price_change_shows_on_listing_and_product_page(client, baclofen, superuser):
    listing_before = html(get(client, "/products/"))
    product_before = html(get(client))
    assert "$68.23" in product_before
    tiers_bulk_change_prices(
        tier_ids=PackageTier.objects.values_list("pk", flat=True),
        mode=PriceChangeMode.PERCENT,
        value=Decimal("-50"),
        user=superuser,
    )
    assert "$68.23" not in html(get(client)) and "$34.12" in html(get(client))
    assert html(get(client, "/products/")) != listing_before  # the "from $… per pill" figure moved


@pytest.mark.django_db
def test_csv_import_shows_at_once(client, superuser, baclofen):
    visitor = Client()
    assert "$68.23" in html(get(visitor))
    client.force_login(superuser)
    rows = rows_of(export_csv(client))
    for row in rows:
        if row["sku"] == "BAC-10MG-90":
            row["price"] = "61.00"
    assert "$68.23" in html(get(visitor))  # exporting and previewing change nothing
    preview = upload(client, to_csv(rows))
    assert "$68.23" in html(get(visitor))
    confirm(client, preview)
    body = html(get(visitor))
    assert "$61.00" in body and "$68.23" not in body


@pytest.mark.django_db
def test_deactivated_pack_disappears(client, baclofen):
    assert f'value="{tier("BAC-10MG-90").pk}"' in html(get(client))
    pack = tier("BAC-10MG-90")
    pack.is_active = False
    pack.save()
    assert f'value="{pack.pk}"' not in html(get(client))


@pytest.mark.django_db
def test_unpublished_medicine_leaves_every_page(client, baclofen):
    for url in ("/products/", "/products/?q=baclofen", PRODUCT):
        get(client, url)
    Product.objects.filter(pk=baclofen.pk).update(
        is_published=False
    )  # a queryset update, no save()
    assert client.get(PRODUCT).status_code == 404
    assert "Baclofen" not in html(get(client, "/products/?q=baclofen"))
    assert "/products/baclofen/" not in html(get(client, "/products/"))


@pytest.mark.django_db
def test_patient_information_edit_shows(client, baclofen):
    section = InfoSection.objects.create(product=baclofen, heading="How it works", body="Old text.")
    assert "Old text." in html(get(client))
    section.body = "New text."
    section.save()
    assert "New text." in html(get(client))
    FAQ.objects.create(product=baclofen, question="Can I drive?", answer="Ask us.")
    assert "Can I drive?" in html(get(client))
    section.delete()
    assert "New text." not in html(get(client))


@pytest.mark.django_db
def test_stock_taken_by_an_order_and_given_back_shows(client, localstripe, baclofen):
    from orders import services
    from tests.orders.conftest import make_cart, place
    from tests.prescriptions.prescription_support import authorise

    pack = tier("BAC-10MG-90")
    PackageTier.objects.filter(pk=pack.pk).update(stock=1)
    assert "Out of stock" not in html(get(client))
    placed = place(make_cart(tier=pack))
    assert "Out of stock" not in html(get(client))  # an unpaid checkout takes nothing
    order = authorise(localstripe, placed)  # the card hold takes the last pack
    assert "Out of stock" in html(get(client))
    services.order_cancel(order=order, by=None, reason="Test")  # gives it back
    assert "Out of stock" not in html(get(client))


@pytest.mark.django_db
def test_a_change_rolled_back_keeps_nothing_stale(client, baclofen):
    """A write in a rolled-back savepoint, then a real one: the real one still shows."""
    from django.db import transaction

    get(client)
    with pytest.raises(RuntimeError), transaction.atomic():
        PackageTier.objects.filter(sku="BAC-10MG-90").update(price=Decimal("1.00"))
        raise RuntimeError
    assert "$68.23" in html(get(client))
    PackageTier.objects.filter(sku="BAC-10MG-90").update(price=Decimal("2.00"))
    assert "$2.00" in html(get(client))


# --- Another server, same Redis -----------------------------------------------------------------

REDIS_URL = os.environ.get("CACHE_TEST_REDIS_URL") or redis_url("cache")
SERVER_B = """
import sys, django
django.setup()
from django.test import Client
response = Client().get(sys.argv[1])
print(response.status_code, response.headers.get("X-Catalog-Cache"))
print(response.content.decode())
"""


def redis_or_skip():
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip(f"no Redis at {REDIS_URL}")


def server_b(url: str) -> tuple[str, str]:
    """GET ``url`` on a second server: its own process, the same database and Redis."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": REDIS_URL,
        "DJANGO_SETTINGS_MODULE": "pharmacy.settings",
        "LOG_LEVEL": "ERROR",
    }
    result = subprocess.run(
        [sys.executable, "-c", SERVER_B, url],
        cwd=ROOT,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    status, _, body = result.stdout.partition("\n")
    return status, body


@pytest.mark.django_db(transaction=True)
def test_admin_price_change_shows_on_the_very_next_request_on_another_server(
    settings, client, superuser, baclofen
):
    if connection.vendor != "postgresql":
        pytest.skip("the second server needs PostgreSQL")
    redis_or_skip()
    redis.Redis.from_url(REDIS_URL).flushdb()
    # This server with the production cache settings, as the other one has them (REDIS_URL set).
    settings.CACHES = redis_caches(REDIS_URL)
    settings.CATALOG_PAGE_CACHE_ALIAS = "pages"
    try:
        status, body = server_b(PRODUCT)
        assert status == "200 miss" and "$68.23" in body
        # This server is served the copy the other one stored: the cache is shared.
        assert cache_state(get(Client())) == "hit"

        client.force_login(superuser)
        dosage = dosage_10mg(baclofen)
        response = client.post(
            reverse("admin:catalog_dosage_change", args=[dosage.pk]),
            inline_post_data(dosage, {f"tiers-{tier_index(dosage, 90)}-price_0": "63.00"}),
        )
        assert response.status_code == 302
        status, body = server_b(PRODUCT)
        assert status == "200 miss" and "$63.00" in body and "$68.23" not in body
    finally:
        redis.Redis.from_url(REDIS_URL).flushdb()


# --- Per-visitor parts --------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("with_redis", [False, True], ids=["database-generations", "redis"])
def test_two_visitors_never_see_each_others_token_or_cart(request, baclofen, customer, with_redis):
    if with_redis:
        request.getfixturevalue("redis_pages")
    ann, bob = Client(enforce_csrf_checks=True), Client(enforce_csrf_checks=True)
    ann_page = get(ann)
    # Ann puts a pack in her cart with the plain (no-JS) form of the page she was served.
    token = TOKEN_RE.search(html(ann_page)).group(1)
    added = ann.post(
        reverse("cart:add"),
        {"csrfmiddlewaretoken": token, "tier_id": tier("BAC-10MG-90").pk, "packages": 1},
        HTTP_REFERER="http://testserver" + PRODUCT,
    )
    assert added.status_code == 302
    bob_page = get(bob)
    ann_again = get(ann)
    assert cache_state(bob_page) == "hit" and cache_state(ann_again) == "hit"
    assert 'class="cart-count">1<' in html(ann_again)
    assert 'class="cart-count">0<' in html(bob_page)
    assert 'class="container messages"' in html(
        ann_again
    )  # her "added" message, on the cached page
    assert 'class="container messages"' not in html(bob_page)
    ann_tokens = set(TOKEN_RE.findall(html(ann_again)))
    bob_tokens = set(TOKEN_RE.findall(html(bob_page)))
    assert ann_tokens and bob_tokens and not ann_tokens & bob_tokens
    assert ann.cookies["csrftoken"].value != bob.cookies["csrftoken"].value
    # Bob's no-JS form works from the cached page too; Ann's token does not work for Bob.
    bob_token = TOKEN_RE.search(html(bob_page)).group(1)
    form = {"tier_id": tier("BAC-10MG-90").pk, "packages": 1}
    assert bob.post(reverse("cart:add"), {**form, "csrfmiddlewaretoken": token}).status_code == 403
    assert (
        bob.post(
            reverse("cart:add"),
            {**form, "csrfmiddlewaretoken": bob_token},
            HTTP_REFERER="http://testserver" + PRODUCT,
        ).status_code
        == 302
    )
    # No placeholder ever reaches a visitor.
    for page in (ann_again, bob_page):
        assert "pcph" not in html(page)


@pytest.mark.django_db
def test_signed_in_header_and_nonce_are_the_visitors_own(client, baclofen, customer):
    anonymous = get(Client())
    client.force_login(customer)
    signed_in = get(client)
    assert cache_state(signed_in) == "hit"
    assert ">Sign in<" in html(anonymous) and ">Account<" not in html(anonymous)
    assert ">Account<" in html(signed_in) and ">Sign in<" not in html(signed_in)
    for response in (anonymous, signed_in):
        nonce = re.search(r"'nonce-([^']+)'", response["Content-Security-Policy"]).group(1)
        assert f'"inlineStyleNonce": "{nonce}"' in html(response)


# --- Private pages, conditional GET, HEAD, compression -------------------------------------------


@pytest.mark.django_db
def test_private_pages_are_never_stored(client, baclofen, customer):
    client.force_login(customer)
    client.post(reverse("cart:add"), {"tier_id": tier("BAC-10MG-90").pk, "packages": 1})
    cache.clear()
    for name in ("cart:detail", "checkout:checkout", "accounts:dashboard"):
        response = client.get(reverse(name))
        assert response.status_code == 200, name
        assert cache_state(response) is None
        assert (
            "private" in response.get("Cache-Control", "")
            or "no-store" in response.get("Cache-Control", "")
            or "no-cache" in response.get("Cache-Control", "")
            or not response.has_header("ETag")
        ), name
    # Nothing catalog was even looked at, while a catalog page is.
    assert not [key for key in cache._cache if ":catalog:" in key]
    assert get(client, PRODUCT)
    assert [key for key in cache._cache if ":catalog:page:" in key]


@pytest.mark.django_db
def test_conditional_get_answers_304_until_the_page_or_the_visitor_changes(client, baclofen):
    first = get(client)
    etag = first["ETag"]
    assert first["Cache-Control"] == "private, no-cache"
    not_modified = client.get(PRODUCT, HTTP_IF_NONE_MATCH=etag)
    assert not_modified.status_code == 304 and not not_modified.content
    assert (
        "Content-Security-Policy" not in not_modified
    )  # the browser keeps the one matching its copy
    client.post(reverse("cart:add"), {"tier_id": tier("BAC-10MG-90").pk, "packages": 1})
    client.get(PRODUCT)  # shows the "added" message once
    changed = client.get(PRODUCT, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and 'class="cart-count">1<' in html(changed)
    etag = changed["ETag"]
    assert client.get(PRODUCT, HTTP_IF_NONE_MATCH=etag).status_code == 304
    PackageTier.objects.filter(sku="BAC-10MG-90").update(price=Money("60.00", "USD"))
    assert client.get(PRODUCT, HTTP_IF_NONE_MATCH=etag).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/", "/products/", PRODUCT])
def test_head_works(client, baclofen, url):
    response = client.head(url)
    assert response.status_code == 200 and response.content == b""
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.django_db
def test_html_is_gzipped_for_clients_that_ask_and_still_personal(client, baclofen):
    response = get(client, HTTP_ACCEPT_ENCODING="gzip")
    assert response["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in response["Vary"] and "Cookie" in response["Vary"]
    body = gzip.decompress(response.content).decode()
    assert TOKEN_RE.search(body) and "$68.23" in body


PER_RESPONSE = re.compile(
    r'("inlineStyleNonce": "|"X-CSRFToken": "|nonce="|name="csrfmiddlewaretoken" value=")[^"]+"'
)


def _same_but_tokens(a: str, b: str) -> bool:
    """Two answers of one page to one visitor differ only in the per-response masked token and nonce."""
    return PER_RESPONSE.sub(r"\1", a) == PER_RESPONSE.sub(r"\1", b)


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/", "/products/", "/products/?q=baclofen", PRODUCT])
def test_a_gzipped_hit_is_the_same_page_for_new_and_signed_in_visitors(baclofen, customer, url):
    """Hits are compressed from pieces kept per page; each visitor must still get exactly their page."""
    signed_in = Client(enforce_csrf_checks=True)
    signed_in.force_login(customer)
    for visitor in (Client(enforce_csrf_checks=True), signed_in):
        get(visitor, url)  # stored, and the CSRF cookie set
        plain = get(visitor, url)
        zipped = get(visitor, url, HTTP_ACCEPT_ENCODING="gzip, deflate, br")
        assert cache_state(zipped) == "hit" and zipped["Content-Encoding"] == "gzip"
        assert int(zipped["Content-Length"]) == len(zipped.content) < len(plain.content) * 0.6
        body = gzip.decompress(zipped.content).decode()
        assert _same_but_tokens(body, html(plain)) and "pcph" not in body
        nonce = re.search(r"'nonce-([^']+)'", zipped["Content-Security-Policy"]).group(1)
        assert f'"inlineStyleNonce": "{nonce}"' in body
    # The no-JS add-to-cart form of the decompressed page works for its visitor.
    token = TOKEN_RE.search(
        gzip.decompress(get(signed_in, PRODUCT, HTTP_ACCEPT_ENCODING="gzip").content).decode()
    )
    added = signed_in.post(
        reverse("cart:add"),
        {"csrfmiddlewaretoken": token.group(1), "tier_id": tier("BAC-10MG-90").pk, "packages": 1},
        HTTP_REFERER="http://testserver" + PRODUCT,
    )
    assert added.status_code == 302


@pytest.mark.django_db
def test_stored_pages_carry_no_indentation(client, baclofen):
    get(client)
    stored = next(local.stored for local in page_cache._local_pages.values())
    assert "\n " not in stored.html and "\n\n" not in stored.html
    assert page_cache.compact("<textarea>\n  keep</textarea>") == "<textarea>\n  keep</textarea>"
    assert page_cache.compact("<p>\n    a\n\n  <b>b</b></p>") == "<p>\na\n<b>b</b></p>"


def test_a_change_saved_while_the_cache_is_unreachable_shows_once_it_is_back(
    client, baclofen, monkeypatch
):
    # Redis away during the save: the generation cannot be replaced then. The first request that
    # reaches the cache again replaces it, so the page stored before the change is not shown.
    get(client)
    assert cache_state(get(client)) == "hit"
    real = page_cache._cache

    class Unreachable:
        def __getattr__(self, name):
            def fail(*args, **kwargs):
                raise ConnectionError("Redis is unreachable")

            return fail

    monkeypatch.setattr(page_cache, "_cache", lambda: Unreachable())
    PackageTier.objects.filter(sku="BAC-10MG-90").update(price=Money("1.23", "USD"))
    assert "$1.23" in html(get(client))  # rendered afresh while the cache is away
    monkeypatch.setattr(page_cache, "_cache", real)
    assert "$1.23" in html(get(client))
    assert not page_cache._unreplaced
