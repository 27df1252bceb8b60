"""The demo catalog fixture: what `make run` shows and what the screenshots are taken from.

It must load cleanly (twice), reproduce the reference Baclofen page to the cent, and hold a
believable, conservative catalog: every class of medicine, sensible pack pricing, complete
patient information and no promotional wording.
"""

import importlib.util
import itertools
import re
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db.models import Count, Q

from catalog import pricing
from catalog.models import (
    FAQ,
    Category,
    Dosage,
    DosingGuideline,
    InfoSection,
    LegalClass,
    PackageTier,
    Product,
    SafetyNote,
)

FIXTURES_DIR = Path(__file__).resolve().parents[2] / "fixtures"
PROMOTIONAL = (
    "miracle",
    "guaranteed",
    "cure-all",
    "no prescription needed",
    "risk-free",
    "100% safe",
)
CATALOG_MODELS = (
    Category,
    Product,
    Dosage,
    PackageTier,
    InfoSection,
    DosingGuideline,
    SafetyNote,
    FAQ,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_catalog(db):
    call_command("loaddata", "demo_catalog", verbosity=0)


def price_rows(dosage: Dosage) -> list[pricing.TierPrice]:
    tiers = list(dosage.tiers.active())
    return pricing.price_table(
        list_price_per_pill=dosage.list_price_per_pill, packs=[(t.quantity, t.price) for t in tiers]
    )


def product_texts(product: Product) -> list[str]:
    texts = [
        product.name,
        product.summary,
        product.indications,
        product.drug_class,
        product.brand_names,
    ]
    texts += [f"{s.heading} {s.body}" for s in product.info_sections.all()]
    texts += [
        f"{g.indication} {g.starting_dose} {g.titration} {g.maximum_dose} {g.administration}"
        for g in product.dosing_guidelines.all()
    ]
    texts += [f"{n.title} {n.detail}" for n in product.safety_notes.all()]
    texts += [f"{f.question} {f.answer}" for f in product.faqs.all()]
    return texts


def test_baclofen_reproduces_the_reference_rows_exactly(demo_catalog, golden):
    baclofen = Product.objects.get(slug="baclofen")
    assert baclofen.legal_class == LegalClass.PRESCRIPTION
    assert baclofen.requires_prescription and baclofen.can_be_ordered_online
    dosages = list(baclofen.dosages.all())
    assert [d.strength for d in dosages] == [d["strength"] for d in golden["dosages"]]
    for dosage, expected_dosage in zip(dosages, golden["dosages"], strict=True):
        assert (
            str(dosage.list_price_per_pill.amount) == golden["list_price_per_pill"][dosage.strength]
        )
        rows = price_rows(dosage)
        for row, expected in zip(rows, expected_dosage["tiers"], strict=True):
            assert row.quantity == expected["quantity"]
            assert str(row.per_pill.amount) == expected["per_pill"]
            assert str(row.list_price.amount) == expected["list_price"]
            assert str(row.price.amount) == expected["price"]
            assert row.savings_percent == expected["savings_percent"]
            assert row.best_per_pill == expected.get("best_per_pill", False)
    assert PackageTier.objects.filter(dosage__product=baclofen).count() == 12
    assert PackageTier.objects.filter(dosage__product=baclofen, sku="BAC-10-090").exists()


def test_baclofen_has_the_full_patient_information(demo_catalog):
    baclofen = Product.objects.get(slug="baclofen")
    headings = " | ".join(s.heading.lower() for s in baclofen.info_sections.all())
    for topic in (
        "about",
        "how it works",
        "used for",
        "stopping",
        "pregnancy",
        "kidney",
        "storage",
    ):
        assert topic in headings, topic
    rows = list(baclofen.dosing_guidelines.all())
    assert [r.indication for r in rows] == [
        "Spasticity",
        "Alcohol use disorder (off-label)",
        "Neuropathic pain (off-label)",
    ]
    assert rows[0].maximum_dose == "80 mg daily"
    kinds = dict(baclofen.safety_notes.values_list("kind").annotate(n=Count("id")))
    assert kinds[SafetyNote.Kind.CONTRAINDICATION] >= 2
    assert kinds[SafetyNote.Kind.INTERACTION] >= 3
    assert kinds[SafetyNote.Kind.SIDE_EFFECT] >= 4
    assert baclofen.faqs.count() >= 5


def test_catalog_is_broad_enough_for_a_real_shop(demo_catalog):
    products = Product.objects.published()
    assert products.count() >= 16
    assert Category.objects.filter(products__isnull=False).distinct().count() >= 5
    present = set(products.values_list("legal_class", flat=True))
    assert present == set(LegalClass.values)
    assert products.filter(legal_class=LegalClass.CONTROLLED).count() >= 1
    assert 4 <= products.filter(is_featured=True).count() <= 6
    assert not products.filter(is_featured=True, legal_class=LegalClass.CONTROLLED).exists()
    limited = products.filter(max_pills_per_order__isnull=False)
    assert limited.exists()
    for product in limited:
        # The pack-size limit must still leave at least one pack that can be bought.
        assert PackageTier.objects.filter(
            dosage__product=product, quantity__lte=product.max_pills_per_order
        ).exists(), product


def test_controlled_substances_are_information_only(demo_catalog):
    for product in Product.objects.filter(legal_class=LegalClass.CONTROLLED):
        assert not product.can_be_ordered_online
        assert product.info_sections.exists() and product.faqs.exists()


def test_every_orderable_product_can_be_put_in_a_cart(demo_catalog):
    for product in Product.objects.published():
        if not product.can_be_ordered_online:
            continue
        assert product.dosages.filter(tiers__is_active=True).exists(), product


def test_pack_prices_fall_per_pill_as_packs_grow(demo_catalog):
    dosages = Dosage.objects.select_related("product").prefetch_related("tiers")
    assert dosages.count() >= 30
    for dosage in dosages:
        tiers = sorted(dosage.tiers.all(), key=lambda t: t.quantity)
        assert [t.position for t in tiers] == list(range(len(tiers))), dosage
        assert 3 <= len(tiers) <= 6, dosage
        packs = [(t.quantity, t.price) for t in tiers]
        for smaller, larger in itertools.pairwise(packs):
            assert pricing.cheaper_per_pill(larger, smaller), (dosage, smaller, larger)
        rows = price_rows(dosage)
        assert sum(row.best_per_pill for row in rows) == 1, dosage
        # The marked pack really is the cheapest per pill: nothing beats it.
        best = next(pack for pack, row in zip(packs, rows) if row.best_per_pill)
        assert not any(pricing.cheaper_per_pill(pack, best) for pack in packs), dosage
        # The smallest pack is priced at (or very near) list; savings grow with the pack.
        assert rows[0].savings_percent <= 5, dosage
        savings = [row.savings_percent for row in rows]
        assert savings == sorted(savings), dosage
        assert all(row.per_pill.amount > 0 for row in rows)


def test_skus_are_unique_and_readable(demo_catalog):
    skus = list(PackageTier.objects.values_list("sku", flat=True))
    assert len(skus) == len(set(skus))
    assert all(re.fullmatch(r"[A-Z]{3,4}-\d+(\.\d+)?(MCG)?-\d{3}", sku) for sku in skus), skus


def test_patient_information_is_complete_for_every_product(demo_catalog):
    products = Product.objects.annotate(
        sections=Count("info_sections", distinct=True),
        dosing_rows=Count("dosing_guidelines", distinct=True),
        contraindications=Count(
            "safety_notes", filter=Q(safety_notes__kind="contraindication"), distinct=True
        ),
        interactions=Count(
            "safety_notes", filter=Q(safety_notes__kind="interaction"), distinct=True
        ),
        side_effects=Count(
            "safety_notes", filter=Q(safety_notes__kind="side_effect"), distinct=True
        ),
        faq_count=Count("faqs", distinct=True),
    )
    for p in products:
        assert 0 < len(p.summary) <= 160, p
        assert p.indications.strip() and p.drug_class.strip(), p
        assert p.sections >= 2 and 1 <= p.dosing_rows <= 3, p
        assert p.contraindications >= 2 and p.interactions >= 2 and p.side_effects >= 3, p
        assert p.faq_count >= 3, p
    assert not InfoSection.objects.filter(body__regex=r"^\s*$").exists()
    assert not FAQ.objects.filter(answer__regex=r"^\s*$").exists()
    assert not DosingGuideline.objects.filter(starting_dose__regex=r"^\s*$").exists()


def test_no_promotional_wording(demo_catalog):
    for product in Product.objects.prefetch_related(
        "info_sections", "dosing_guidelines", "safety_notes", "faqs"
    ):
        text = " ".join(product_texts(product)).lower()
        for word in PROMOTIONAL:
            assert word not in text, (product, word)


def test_off_label_uses_are_labelled(demo_catalog):
    baclofen = Product.objects.get(slug="baclofen")
    uses = baclofen.info_sections.get(heading="What it is used for").body
    assert "off-label" in uses
    for row in baclofen.dosing_guidelines.exclude(indication="Spasticity"):
        assert "(off-label)" in row.indication


def test_loading_twice_changes_nothing(demo_catalog):
    counts = {model: model.objects.count() for model in CATALOG_MODELS}
    prices = sorted(PackageTier.objects.values_list("sku", "price"))
    call_command("loaddata", "demo_catalog", verbosity=0)
    assert {model: model.objects.count() for model in CATALOG_MODELS} == counts
    assert sorted(PackageTier.objects.values_list("sku", "price")) == prices


def test_staff_can_add_products_after_loading(demo_catalog):
    # loaddata must leave the primary-key sequences past the fixture's fixed keys.
    category = Category.objects.create(name="Eye care", slug="eye-care")
    product = Product.objects.create(
        name="Test drops",
        slug="test-drops",
        category=category,
        active_ingredient="saline",
        legal_class=LegalClass.GENERAL_SALE,
        summary="Drops.",
    )
    assert product.pk > Product.objects.exclude(pk=product.pk).order_by("-pk").first().pk


def test_mcg_strengths_sort_below_mg(demo_catalog):
    strengths = list(
        Dosage.objects.filter(product__slug="levothyroxine").values_list("strength", flat=True)
    )
    assert strengths == ["25mcg", "50mcg", "75mcg", "100mcg"]


def test_committed_fixture_matches_its_build_script():
    spec = importlib.util.spec_from_file_location(
        "build_demo_catalog", FIXTURES_DIR / "build_demo_catalog.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (FIXTURES_DIR / "demo_catalog.json").read_text(encoding="utf-8") == module.render()


def test_the_demo_sorts_by_price_as_if_staff_had_entered_every_pack(demo_catalog, client):
    """loaddata bypasses the writes that keep ``Product.lowest_pill_price``: the fixture carries it,
    and it is what recomputing from the packs gives, so "Lowest price per pill" works in the demo."""
    from catalog.models import lowest_price_recompute

    stored = dict(Product.objects.values_list("pk", "lowest_pill_price"))
    unpriced = set(
        Product.objects.exclude(dosages__tiers__is_active=True).values_list("pk", flat=True)
    )
    assert {pk for pk, value in stored.items() if value is None} == unpriced != set(stored)
    lowest_price_recompute(using="default", product_ids=sorted(stored))
    assert dict(Product.objects.values_list("pk", "lowest_pill_price")) == stored
    cheapest = min(
        (tier.price.amount / tier.quantity, tier.dosage.product.name)
        for tier in PackageTier.objects.filter(
            is_active=True, dosage__product__is_published=True
        ).select_related("dosage__product")
    )
    page = client.get("/products/?sort=price").content.decode()
    assert page.index(cheapest[1]) < min(
        page.index(p.name)
        for p in Product.objects.published().exclude(name=cheapest[1])
        if p.name in page
    )
