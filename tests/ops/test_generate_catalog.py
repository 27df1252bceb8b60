"""The benchmark catalog generator: published, separate, deterministic, removable."""

import itertools
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from catalog.models import Category, Dosage, PackageTier, Product
from tests.factories import PackageTierFactory

pytestmark = pytest.mark.django_db


def snapshot():
    return [
        (
            t.dosage.product.slug,
            t.dosage.product.name,
            t.dosage.strength,
            t.quantity,
            str(t.price.amount),
            t.sku,
        )
        for t in PackageTier.objects.filter(sku__startswith="BENCH-")
        .select_related("dosage__product")
        .order_by("dosage__product__slug", "dosage__strength_micrograms", "quantity")
    ]


def test_generates_published_products_with_the_requested_shape():
    call_command("generate_catalog", products=7, tiers_per_product=5, dosages_per_product=2)
    products = Product.objects.filter(slug__startswith="bench-")
    assert products.count() == 7
    assert all(p.is_published and p.can_be_ordered_online for p in products)
    assert set(products.values_list("category__slug", flat=True)) == {"benchmark"}
    assert Dosage.objects.filter(product__in=products).count() == 14
    assert PackageTier.objects.filter(dosage__product__in=products).count() == 35
    for product in products:
        assert product.dosages.count() == 2


def test_prices_are_positive_and_bigger_packs_are_not_dearer_per_pill():
    call_command("generate_catalog", products=20, tiers_per_product=10)
    for dosage in Dosage.objects.filter(product__slug__startswith="bench-").prefetch_related(
        "tiers"
    ):
        tiers = sorted(dosage.tiers.all(), key=lambda t: t.quantity)
        per_pill = [t.price.amount / t.quantity for t in tiers]
        assert all(p > 0 for p in per_pill)
        # Non-increasing, up to the half-cent rounding of a pack price spread over its pills.
        assert all(
            later <= earlier + Decimal("0.001") for earlier, later in itertools.pairwise(per_pill)
        )
        assert per_pill[-1] < per_pill[0]


def test_same_arguments_give_the_same_catalog():
    call_command("generate_catalog", products=5, tiers_per_product=4)
    first = snapshot()
    call_command("generate_catalog", delete=True)
    call_command("generate_catalog", products=5, tiers_per_product=4)
    second = snapshot()
    assert [row[:5] for row in first] == [row[:5] for row in second]
    assert len(first) == 20


def test_refuses_to_generate_twice():
    call_command("generate_catalog", products=2, tiers_per_product=2)
    with pytest.raises(CommandError, match="already exist"):
        call_command("generate_catalog", products=2, tiers_per_product=2)


def test_delete_removes_only_benchmark_rows_and_their_history():
    real_tier = PackageTierFactory()
    call_command("generate_catalog", products=3, tiers_per_product=4)
    bench_tier = PackageTier.objects.filter(sku__startswith="BENCH-").first()
    bench_tier.price = bench_tier.price * 2
    bench_tier.save()  # leaves a history row, as an admin edit would
    call_command("generate_catalog", delete=True)
    assert not Product.objects.filter(slug__startswith="bench-").exists()
    assert not PackageTier.objects.filter(sku__startswith="BENCH-").exists()
    assert not PackageTier.history.filter(sku__startswith="BENCH-").exists()
    assert not Category.objects.filter(slug="benchmark").exists()
    assert PackageTier.objects.filter(pk=real_tier.pk).exists()


def test_delete_cascades_to_cart_lines_of_benchmark_tiers():
    from cart.models import Cart, CartLine

    call_command("generate_catalog", products=1, tiers_per_product=2)
    tier = PackageTier.objects.filter(sku__startswith="BENCH-").first()
    cart = Cart.objects.create(session_key="bench-session")
    CartLine.objects.create(cart=cart, tier=tier, packages=1, price_when_added=tier.price)
    call_command("generate_catalog", delete=True)
    assert not CartLine.objects.filter(cart=cart).exists()


@pytest.mark.parametrize(
    "options",
    [
        {"products": 0},
        {"tiers_per_product": 1, "dosages_per_product": 2},
        {"dosages_per_product": 99},
    ],
)
def test_bad_arguments_get_a_clear_error(options):
    with pytest.raises(CommandError):
        call_command("generate_catalog", **{"products": 2, "tiers_per_product": 4, **options})


def test_generated_products_show_on_a_cached_listing_at_once(client):
    """COPY bypasses the models: the command retires the cached catalog pages itself."""
    call_command("generate_catalog", products=1, tiers_per_product=1, dosages_per_product=1)
    assert client.get("/products/").status_code == 200
    assert client.get("/products/")["X-Catalog-Cache"] == "hit"
    call_command("generate_catalog", delete=True)
    call_command("generate_catalog", products=30, tiers_per_product=1, dosages_per_product=1)
    assert "30 medicines" in client.get("/products/").content.decode()
