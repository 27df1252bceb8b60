"""The stored lowest per-pill price (``Product.lowest_pill_price``) and the listing sorted by it.

The price order of the listing reads the stored figure (issue #17: computing every product's
minimum per request took ~0.9 s at 100,000 products). These tests pin that it stays the real
minimum after every way staff or code change tiers, that stock moves do not pay for it, and that
the customer sees the same order as when the minimum was computed per request.
"""

import threading
from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, connections, transaction
from django.db.models import F, Min, Q
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from djmoney.money import Money
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from catalog import selectors, views
from catalog.models import Dosage, PackageTier, Product
from tests.catalog.html import parse
from tests.factories import (
    CategoryFactory,
    DosageFactory,
    PackageTierFactory,
    ProductFactory,
    UserFactory,
)


def usd(value) -> Money:
    return Money(Decimal(value), "USD")


def computed() -> dict[int, Decimal | None]:
    """Every product's minimum as the listing used to compute it per request."""
    tiers = "dosages__tiers__"
    return dict(
        Product.objects.annotate(
            lowest=Min(
                selectors.PerPill(F(f"{tiers}price"), F(f"{tiers}quantity")),
                filter=Q(**{f"{tiers}is_active": True}),
                output_field=selectors.PER_PILL_FIELD,
            )
        ).values_list("pk", "lowest")
    )


def assert_stored_is_computed():
    stored = dict(Product.objects.values_list("pk", "lowest_pill_price"))
    for pk, lowest in computed().items():
        expected = None if lowest is None else lowest.quantize(Decimal("1e-12"))
        assert stored[pk] == expected, (pk, stored[pk], lowest)


@pytest.fixture
def two(db):
    """Two products, each two strengths with two packs (one inactive cheap pack on the first)."""
    products = []
    for n in range(2):
        product = ProductFactory(name=f"Remedy {n}", slug=f"remedy-{n}")
        for s, strength in enumerate(("5mg", "10mg")):
            dosage = DosageFactory(
                product=product, strength=strength, strength_value=Decimal(strength[:-2])
            )
            PackageTierFactory(dosage=dosage, quantity=10, price=usd(10 + 5 * s + n))
            PackageTierFactory(dosage=dosage, quantity=30, price=usd(27 + 6 * s + n))
        products.append(product)
    PackageTierFactory(
        dosage=products[0].dosages.first(), quantity=100, price=usd("1.00"), is_active=False
    )
    return products


def run_at_once(*targets) -> None:
    """Each target in its own thread (its own database connection), all waited for."""
    threads = [threading.Thread(target=target) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)


def lowest(product) -> Decimal | None:
    return Product.objects.get(pk=product.pk).lowest_pill_price


def test_creating_tiers_stores_the_minimum_of_active_packs(two):
    assert lowest(two[0]) == Decimal("0.9")  # 27 / 30, not the inactive 1.00 / 100
    assert_stored_is_computed()


def test_every_write_path_keeps_it_exact(two):
    first, second = two
    tier = PackageTier.objects.get(dosage__product=first, quantity=30, dosage__strength="5mg")
    tier.price = usd("3.00")  # model save
    tier.save()
    assert lowest(first) == Decimal("0.1")
    assert_stored_is_computed()
    PackageTier.objects.filter(pk=tier.pk).update(is_active=False)  # queryset update: deactivation
    assert_stored_is_computed()
    PackageTier.objects.filter(dosage__product=first, is_active=False).update(
        is_active=True
    )  # filter on the field
    assert lowest(first) == Decimal("0.01")  # the 1.00 / 100 pack is active now
    assert_stored_is_computed()
    tiers = list(PackageTier.objects.filter(dosage__product=second))
    for t in tiers:
        t.price = usd("50.00")
    PackageTier.objects.bulk_update(tiers, ["price"])
    assert lowest(second) == Decimal("1.666666666667")  # 50 / 30, to the column's 12 places
    assert_stored_is_computed()
    PackageTier.objects.bulk_create(
        [
            PackageTier(
                dosage=second.dosages.first(), quantity=1000, price=usd("20.00"), sku="NEW-1000"
            )
        ]
    )
    assert lowest(second) == Decimal("0.02")
    assert_stored_is_computed()
    PackageTier.objects.get(sku="NEW-1000").delete()  # model delete
    assert_stored_is_computed()
    PackageTier.objects.filter(dosage__product=first, quantity=100).delete()  # queryset delete
    assert_stored_is_computed()
    moved = PackageTier.objects.filter(dosage__product=first).order_by("pk").first()
    moved.dosage = second.dosages.last()  # a pack moved to another product's strength
    moved.quantity = 7
    moved.save()
    assert_stored_is_computed()
    dosage = first.dosages.first()
    dosage.product = second  # a strength moved to another product
    dosage.strength = "5mg-moved"
    dosage.save()
    assert_stored_is_computed()
    Dosage.objects.filter(pk=dosage.pk).update(product=first)
    assert_stored_is_computed()
    first.dosages.last().delete()  # its packs go with it (cascade)
    assert_stored_is_computed()
    Dosage.objects.filter(product=first).delete()
    assert lowest(first) is None
    assert_stored_is_computed()


def test_a_write_in_a_rolled_back_transaction_leaves_nothing(two):
    with pytest.raises(RuntimeError), transaction.atomic():
        PackageTier.objects.filter(dosage__product=two[0]).update(price=usd("0.50"))
        raise RuntimeError
    assert lowest(two[0]) == Decimal("0.9")


def test_stock_moves_do_not_recompute(two):
    tier = PackageTier.objects.filter(dosage__product=two[0]).first()
    with CaptureQueriesContext(connection) as captured:
        PackageTier.objects.filter(pk=tier.pk).update(stock=5)  # every checkout
        tier.stock = 4
        tier.save(update_fields=["stock"])
        tier.stock = 3
        tier.save()  # a full save that changes no price field
        PackageTier.objects.bulk_update([tier], ["stock"])
    touched = [q["sql"] for q in captured.captured_queries if "catalog_product" in q["sql"]]
    assert touched == []  # neither the lock nor the recompute


def test_admin_bulk_price_change_keeps_it_exact(client, baclofen):
    client.force_login(UserFactory(email="boss@pharmacy.example", is_staff=True, is_superuser=True))
    tiers = list(PackageTier.objects.filter(sku__in=["BAC-10MG-90", "BAC-10MG-120", "BAC-25MG-30"]))
    before = lowest(baclofen)
    response = client.post(
        reverse("admin:catalog_packagetier_changelist"),
        {
            "action": "change_prices",
            ACTION_CHECKBOX_NAME: [str(t.pk) for t in tiers],
            "mode": "percent",
            "value": "-50",
            "_confirm": "1",
            "previewed": "percent:-50.00",
        },
    )
    assert response.status_code in (200, 302)
    assert (
        PackageTier.objects.get(sku="BAC-10MG-90").price
        != next(t for t in tiers if t.sku == "BAC-10MG-90").price
    )
    assert lowest(baclofen) < before
    assert_stored_is_computed()


def test_csv_import_keeps_it_exact(client, baclofen):
    client.force_login(UserFactory(email="boss@pharmacy.example", is_staff=True, is_superuser=True))
    content = b"sku,product,strength,quantity,price,is_active\nBAC-10MG-90,,,,1.80,1\nBAC-25MG-30,,,,99.00,0\n"
    preview = client.post(
        reverse("admin:catalog_packagetier_import"),
        {
            "format": "0",
            "resource": "0",
            "import_file": SimpleUploadedFile("prices.csv", content, "text/csv"),
        },
    )
    form = preview.context["confirm_form"]
    client.post(
        reverse("admin:catalog_packagetier_process_import"),
        {k: form.initial[k] for k in form.initial},
    )
    assert lowest(baclofen) == Decimal("0.02")  # 1.80 / 90
    assert_stored_is_computed()


# --- The listing sorted by price ---------------------------------------------------------------


def slugs_on(client, params) -> list[str]:
    cards = parse(client.get("/products/", params).content).find_all("article", cls="product-card")
    return list(
        dict.fromkeys(card.find("a").attrs["href"].rstrip("/").rsplit("/", 1)[-1] for card in cards)
    )


def old_order() -> list[str]:
    """The price order as the listing computed it per request before the stored column."""
    tiers = "dosages__tiers__"
    return list(
        Product.objects.published()
        .annotate(
            lowest=Min(
                selectors.PerPill(F(f"{tiers}price"), F(f"{tiers}quantity")),
                filter=Q(**{f"{tiers}is_active": True}),
                output_field=selectors.PER_PILL_FIELD,
            )
        )
        .order_by(F("lowest").asc(nulls_last=True), "name", "pk")
        .values_list("slug", flat=True)
    )


products_strategy = st.lists(
    st.tuples(
        st.sampled_from(["Alpha", "Beta", "Gamma"]),  # repeated names: ties broken by id
        st.booleans(),  # published
        st.lists(
            st.tuples(st.sampled_from([1, 3, 7, 10, 30]), st.integers(1, 400), st.booleans()),
            max_size=3,
            unique_by=lambda t: t[0],
        ),  # (pills, price in dollars, active)
    ),
    max_size=9,
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(products=products_strategy)
# A page that crosses a mark of the unpriced part: one priced product shifts the five unpriced
# ones off the marks' grid, so page 3 (rows 4-5) spans unpriced rows 3 and 4 across the mark at 4.
@example(products=[("Alpha", True, [])] * 5 + [("Alpha", True, [(1, 1, True)])])
def test_price_order_is_the_old_definition_on_every_page(client, monkeypatch, db, products):
    """Same products in the same order as the per-request minimum, split over pages and marks
    (2 per page, a mark every 2 pages), products without a price last."""
    from django.core.cache import cache

    monkeypatch.setattr(views, "PRODUCTS_PER_PAGE", 2)
    monkeypatch.setattr(selectors, "MARK_EVERY_PAGES", 2)
    Product.objects.all().delete()
    category = CategoryFactory()
    for n, (name, published, packs) in enumerate(products):
        product = ProductFactory(
            name=name, slug=f"h-{n}", category=category, is_published=published
        )
        dosage = DosageFactory(product=product)
        for quantity, dollars, active in packs:
            PackageTierFactory(
                dosage=dosage, quantity=quantity, price=usd(dollars), is_active=active
            )
    cache.clear()
    order = old_order()
    pages = max(1, -(-len(order) // 2))
    shown = []
    for number in range(1, pages + 1):
        page = slugs_on(client, {"sort": "price", "page": number})
        assert page == order[(number - 1) * 2 : number * 2], (number, order)
        shown += page
    assert shown == order


def test_price_order_follows_a_price_change_but_not_a_stock_move(client, two):
    assert slugs_on(client, {"sort": "price"}) == ["remedy-0", "remedy-1"]
    PackageTier.objects.filter(dosage__product=two[1], quantity=30).update(price=usd("3.00"))
    assert slugs_on(client, {"sort": "price"}) == ["remedy-1", "remedy-0"]
    PackageTier.objects.update(stock=2)
    with CaptureQueriesContext(connection) as captured:
        assert slugs_on(client, {"sort": "price"}) == ["remedy-1", "remedy-0"]
    assert not [
        q for q in captured.captured_queries if "ROW_NUMBER" in q["sql"].upper()
    ]  # the index was kept


def test_price_sort_uses_its_index_on_postgresql(two):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL plan")
    queryset = selectors.product_listing().filter(lowest_pill_price__isnull=False)
    ids = selectors._part_ids(
        queryset,
        selectors.PRICED_ORDER,
        [(Decimal("0.9"), "Remedy 0", two[0].pk), (Decimal("1"), "Remedy 1", two[1].pk)],
        0,
        1,
        1,
    )
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        sql, params = ids.query.sql_with_params()
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "catalog_product_price_idx" in plan and "ROW(" in plan, plan


# --- Two staff editing packs of one product at once -------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_transactions_changing_one_product_leave_the_right_minimum(two):
    """A lowers one pack and commits late; B changes another pack of the same product meanwhile.

    B's write waits for A's lock on the product, then recomputes in a new statement that sees A's
    committed pack: the stored value is A's 0.05, not the 0.20 B would compute from its snapshot.
    """
    import time

    a, b = PackageTier.objects.filter(dosage__product=two[0], is_active=True).order_by("pk")[:2]
    a_saved = threading.Event()
    errors: list = []

    def first():
        try:
            with transaction.atomic():
                tier = PackageTier.objects.get(pk=a.pk)
                tier.price = usd("0.50")  # 0.05 a pill
                tier.save()
                a_saved.set()
                time.sleep(0.5)  # B is now waiting for the product's lock
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            a_saved.set()
            connections.close_all()

    def second():
        try:
            a_saved.wait(timeout=10)
            with transaction.atomic():
                tier = PackageTier.objects.get(pk=b.pk)
                tier.price = usd(Decimal("0.20") * tier.quantity)  # 0.20 a pill
                tier.save()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    run_at_once(first, second)
    assert errors == []
    assert lowest(two[0]) == Decimal("0.05")
    assert_stored_is_computed()


@pytest.mark.django_db(transaction=True)
def test_a_bulk_price_change_and_a_pack_update_at_once_do_not_deadlock(two, monkeypatch):
    """Staff confirm a bulk price change while another write updates one of its packs.

    Every tier write locks the product before the tier; the bulk change locked its tiers first and
    then the product (one save per pack), so the two could each wait for the other and PostgreSQL
    aborted one ("deadlock detected"). Both must now finish, one after the other.
    """
    import time

    from catalog import services
    from catalog.services import PriceChangeMode

    tier = PackageTier.objects.filter(dosage__product=two[0], is_active=True).order_by("pk").first()
    locked = threading.Event()
    preview = services.tiers_price_change_preview
    errors: list = []

    def paused_preview(**kwargs):
        locked.set()  # the bulk change holds its locks: let the other write run into them
        time.sleep(0.5)
        return preview(**kwargs)

    monkeypatch.setattr(services, "tiers_price_change_preview", paused_preview)

    def bulk():
        try:
            services.tiers_bulk_change_prices(
                tier_ids=[tier.pk], mode=PriceChangeMode.AMOUNT, value=Decimal("-1.00"), user=None
            )
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            locked.set()
            connections.close_all()

    def update():
        try:
            locked.wait(timeout=10)
            PackageTier.objects.filter(pk=tier.pk).update(
                is_active=True, price=F("price") + Decimal("5.00")
            )
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    run_at_once(bulk, update)
    assert errors == []
    assert PackageTier.objects.get(pk=tier.pk).price == tier.price + usd("4.00")  # both applied
    assert_stored_is_computed()
