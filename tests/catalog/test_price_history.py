"""The price audit trail: who changed what, when, and the lowest price of the last 30 days."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone
from djmoney.money import Money

from catalog.models import PackageTier
from catalog.price_history import product_price_changes, tier_lowest_price, tiers_lowest_prices
from tests.factories import DosageFactory, PackageTierFactory, UserFactory

NOW = dt.datetime(2026, 6, 30, 12, 0, tzinfo=dt.UTC)


def usd(value) -> Money:
    return Money(value, "USD")


@pytest.fixture
def superuser(db):
    return UserFactory(email="boss@pharmacy.example", is_staff=True, is_superuser=True)


def priced_tier(*prices_and_days_ago):
    """A tier whose price history is (price, days before NOW) pairs, oldest first."""
    (first_price, first_age), *changes = prices_and_days_ago
    tier = PackageTierFactory(price=usd(first_price))
    _date_latest(tier, NOW - dt.timedelta(days=first_age))
    for price, age in changes:
        tier.price = usd(price)
        tier.save()
        _date_latest(tier, NOW - dt.timedelta(days=age))
    return tier


def _date_latest(tier, when):
    record = tier.history.order_by("-history_id").first()
    PackageTier.history.model.objects.filter(history_id=record.history_id).update(history_date=when)


def test_lowest_price_counts_every_change_inside_the_window(db):
    tier = priced_tier(("50.00", 60), ("40.00", 40), ("45.00", 20), ("35.00", 10), ("55.00", 5))
    assert tier_lowest_price(tier=tier, now=NOW) == usd("35.00")


def test_price_in_force_at_the_window_start_counts(db):
    tier = priced_tier(("40.00", 60), ("60.00", 5))
    assert tier_lowest_price(tier=tier, now=NOW) == usd("40.00")


def test_prices_that_ended_before_the_window_do_not_count(db):
    tier = priced_tier(("30.00", 60), ("60.00", 31), ("50.00", 10))
    assert tier_lowest_price(tier=tier, now=NOW) == usd("50.00")
    assert tier_lowest_price(tier=tier, days=45, now=NOW) == usd("30.00")


def test_changes_after_now_do_not_count(db):
    tier = priced_tier(("50.00", 20), ("10.00", -1))
    assert tier_lowest_price(tier=tier, now=NOW) == usd("50.00")


def test_tier_created_inside_the_window(db):
    tier = priced_tier(("20.00", 3))
    assert tier_lowest_price(tier=tier, now=NOW) == usd("20.00")


def test_tier_without_history_falls_back_to_its_price(db):
    tier = PackageTierFactory(price=usd("12.34"))
    tier.history.all().delete()
    assert tier_lowest_price(tier=tier) == usd("12.34")


def test_lowest_prices_for_many_tiers_take_one_query(db, django_assert_num_queries):
    dosage = DosageFactory()
    tiers = [
        PackageTierFactory(dosage=dosage, quantity=10 * (i + 1), price=usd(10 + i))
        for i in range(12)
    ]
    for tier in tiers:
        tier.price = usd(tier.price.amount - 1)
        tier.save()
    with django_assert_num_queries(1):
        lowest = tiers_lowest_prices(tiers=tiers)
    assert lowest == {t.pk: t.price for t in tiers}


def test_changes_record_who_old_and_new(db, baclofen):
    editor = UserFactory(email="editor@pharmacy.example", is_staff=True)
    tier = PackageTier.objects.get(sku="BAC-10MG-90")
    tier.price = usd("70.00")
    tier._history_user = editor
    tier.save()
    tier.is_active = False
    tier._history_user = editor
    tier.save()
    dosage = tier.dosage
    dosage.list_price_per_pill = usd("0.90000")
    dosage._history_user = editor
    dosage.save()

    changes = [c for c in product_price_changes(product=baclofen) if c.kind == "changed"]
    assert [(c.field, c.old, c.new, c.who) for c in changes] == [
        ("list price per pill", usd("0.86963"), usd("0.90000"), "editor@pharmacy.example"),
        ("active", True, False, "editor@pharmacy.example"),
        ("price", usd("68.23"), usd("70.00"), "editor@pharmacy.example"),
    ]
    assert changes[2].subject == "10mg × 90 (BAC-10MG-90)"


def test_admin_price_history_page_shows_the_change_with_the_user(client, superuser, baclofen):
    client.force_login(superuser)
    tier = PackageTier.objects.get(sku="BAC-10MG-90")
    response = client.post(
        reverse("admin:catalog_packagetier_change", args=[tier.pk]),
        {
            "dosage": tier.dosage_id,
            "quantity": "90",
            "price_0": "70.00",
            "price_1": "USD",
            "sku": tier.sku,
            "is_active": "on",
            "position": str(tier.position),
            "stock": "",
        },
    )
    assert response.status_code == 302
    page = client.get(reverse("admin:catalog_product_price_history", args=[baclofen.pk]))
    assert page.status_code == 200
    rows = page.context["rows"]
    newest = rows[0]
    assert newest["who"] == "boss@pharmacy.example"
    assert newest["subject"] == "10mg × 90 (BAC-10MG-90)"
    assert (newest["field"], newest["old"], newest["new"]) == ("price", "$68.23", "$70.00")
    html = page.content.decode()
    assert "boss@pharmacy.example" in html and "$68.23" in html and "$70.00" in html


@pytest.mark.parametrize("edits", [1, 20])
def test_price_history_page_query_budget(
    client, superuser, baclofen, edits, django_assert_max_num_queries
):
    tiers = list(PackageTier.objects.filter(dosage__product=baclofen))
    for i in range(edits):
        tier = tiers[i % len(tiers)]
        tier.price = usd(tier.price.amount + 1)
        tier._history_user = superuser
        tier.save()
    client.force_login(superuser)
    with django_assert_max_num_queries(8):
        response = client.get(reverse("admin:catalog_product_price_history", args=[baclofen.pk]))
    assert len([r for r in response.context["rows"] if r["old"] != "—"]) == edits


def test_lowest_30_days_column_in_the_tier_changelist(client, superuser, baclofen):
    tier = PackageTier.objects.get(sku="BAC-10MG-90")
    tier.price = usd("60.00")
    tier.save()
    tier.price = usd("75.00")
    tier.save()
    client.force_login(superuser)
    cl = client.get(reverse("admin:catalog_packagetier_changelist"), {"q": "BAC-10MG-90"}).context[
        "cl"
    ]
    [row] = cl.result_list
    assert row.admin_lowest_30 == usd("60.00")
    assert row.price == usd("75.00")


def test_pharmacist_without_catalog_rights_cannot_read_price_history(client, baclofen):
    outsider = UserFactory(email="outsider@pharmacy.example", is_staff=True)
    client.force_login(outsider)
    response = client.get(reverse("admin:catalog_product_price_history", args=[baclofen.pk]))
    assert response.status_code == 403


def test_now_defaults_to_the_current_time(db):
    tier = PackageTierFactory(price=usd("20.00"))
    tier.price = usd("25.00")
    tier.save()
    assert tier_lowest_price(tier=tier) == usd("20.00")
    assert tier_lowest_price(tier=tier, now=timezone.now() + dt.timedelta(days=31)) == usd("25.00")


def test_tiers_without_a_creation_record_still_show_their_changes(db, baclofen):
    """Fixture-loaded rows (loaddata) have no history until their first change."""
    PackageTier.history.model.objects.all().delete()
    tier = PackageTier.objects.get(sku="BAC-10MG-90")
    tier.price = usd("66.00")
    tier.save()
    changes = product_price_changes(product=baclofen)
    assert [(c.field, c.old, c.new, c.kind) for c in changes if c.field == "price"] == [
        ("price", None, usd("66.00"), "first recorded")
    ]
    assert changes[0].subject == "10mg × 90 (BAC-10MG-90)"
