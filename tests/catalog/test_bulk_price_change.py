"""Bulk price changes from the tier and product changelists: preview, confirm, refusal."""

import io
from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from djmoney.money import Money

from catalog.models import PackageTier
from catalog.services import PriceChangeRefused, changed_price, tiers_bulk_change_prices
from tests.factories import PackageTierFactory, UserFactory


def usd(value) -> Money:
    return Money(value, "USD")


@pytest.fixture
def superuser(db):
    return UserFactory(email="boss@pharmacy.example", is_staff=True, is_superuser=True)


TIERS_URL = "admin:catalog_packagetier_changelist"
PRODUCTS_URL = "admin:catalog_product_changelist"


def prices(skus) -> dict[str, Money]:
    return {t.sku: t.price for t in PackageTier.objects.filter(sku__in=skus)}


def select(tiers_or_products, action: str, **extra) -> dict:
    data = {"action": action, ACTION_CHECKBOX_NAME: [str(o.pk) for o in tiers_or_products], **extra}
    if "_confirm" in extra:
        # What the preview page's confirm button sends back: the change it showed.
        data.setdefault(
            "previewed", f"{extra['mode']}:{Decimal(extra['value']).quantize(Decimal('0.01'))}"
        )
    return data


def test_changed_price_rounds_half_up_to_the_cent():
    assert changed_price(price=usd("68.23"), mode="percent", value=Decimal("10")) == usd(
        "75.05"
    )  # 75.053
    assert changed_price(price=usd("0.25"), mode="percent", value=Decimal("-10")) == usd(
        "0.23"
    )  # 0.225
    assert changed_price(price=usd("52.18"), mode="amount", value=Decimal("-2.18")) == usd("50.00")


def test_tier_action_shows_a_form_then_a_preview_and_changes_nothing_yet(
    client, superuser, baclofen
):
    client.force_login(superuser)
    tiers = list(PackageTier.objects.filter(sku__in=["BAC-10MG-90", "BAC-10MG-120"]))
    before = prices(["BAC-10MG-90", "BAC-10MG-120"])
    url = reverse(TIERS_URL)

    form_page = client.post(url, select(tiers, "change_prices"))
    assert form_page.status_code == 200
    assert form_page.context["rows"] is None
    assert 'name="_confirm"' not in form_page.content.decode()

    preview = client.post(
        url, select(tiers, "change_prices", mode="percent", value="10", _preview="1")
    )
    assert preview.status_code == 200
    html = preview.content.decode()
    rows = {r["label"].split(" (")[0]: r for r in preview.context["rows"]}
    row90 = rows["Baclofen 10mg × 90"]
    assert (row90["old_price"], row90["new_price"]) == ("$68.23", "$75.05")
    assert (row90["old_per_pill"], row90["new_per_pill"]) == ("$0.76", "$0.83")
    assert 'name="_confirm"' in html
    assert prices(before) == before


def test_confirm_applies_the_change_with_one_history_record_per_tier(client, superuser, baclofen):
    client.force_login(superuser)
    tiers = list(PackageTier.objects.filter(sku__in=["BAC-10MG-90", "BAC-10MG-120"]))
    response = client.post(
        reverse(TIERS_URL),
        select(tiers, "change_prices", mode="amount", value="-3.00", _confirm="1"),
        follow=True,
    )
    assert response.status_code == 200
    assert prices(["BAC-10MG-90", "BAC-10MG-120"]) == {
        "BAC-10MG-90": usd("65.23"),
        "BAC-10MG-120": usd("82.29"),
    }
    for tier in tiers:
        records = list(tier.history.all())
        assert len(records) == 2  # created + this one change
        assert records[0].history_user == superuser
    texts = [str(m) for m in response.context["messages"]]
    assert "Changed the price of 2 pack(s)." in texts


def test_refuses_when_any_new_price_would_be_zero_or_less(client, superuser, baclofen):
    client.force_login(superuser)
    tiers = list(PackageTier.objects.filter(dosage__product=baclofen))
    before = prices([t.sku for t in tiers])
    url = reverse(TIERS_URL)
    # The 60-pill 10mg pack costs $52.18; taking $60 off would make it negative.
    preview = client.post(
        url, select(tiers, "change_prices", mode="amount", value="-60", _preview="1")
    )
    html = preview.content.decode()
    assert "would be zero or less" in html
    assert 'name="_confirm"' not in html

    response = client.post(
        url, select(tiers, "change_prices", mode="amount", value="-60", _confirm="1")
    )
    assert response.status_code == 200
    assert any("Nothing was changed" in str(m) for m in response.context["messages"])
    assert prices(before) == before
    assert all(t.history.count() == 1 for t in tiers)


def test_service_refusal_is_all_or_nothing(db, superuser):
    cheap = PackageTierFactory(price=usd("1.00"))
    dear = PackageTierFactory(price=usd("100.00"))
    with pytest.raises(PriceChangeRefused, match="zero or less"):
        tiers_bulk_change_prices(
            tier_ids=[dear.pk, cheap.pk], mode="amount", value=Decimal("-1.00"), user=superuser
        )
    dear.refresh_from_db()
    assert dear.price == usd("100.00")


def test_a_cut_of_100_percent_is_rejected_by_the_form(client, superuser, baclofen):
    client.force_login(superuser)
    tiers = list(PackageTier.objects.filter(sku="BAC-10MG-90"))
    response = client.post(
        reverse(TIERS_URL),
        select(tiers, "change_prices", mode="percent", value="-100", _confirm="1"),
    )
    assert "100% or more" in response.content.decode()
    assert prices(["BAC-10MG-90"]) == {"BAC-10MG-90": usd("68.23")}


def test_confirm_after_editing_the_change_shows_a_fresh_preview_and_changes_nothing(
    client, superuser, baclofen
):
    client.force_login(superuser)
    tiers = list(PackageTier.objects.filter(sku="BAC-10MG-90"))
    preview = client.post(
        reverse(TIERS_URL), select(tiers, "change_prices", mode="percent", value="5", _preview="1")
    )
    assert 'value="percent:5.00"' in preview.content.decode()
    # The person types -50 after previewing +5 and presses Confirm without previewing again.
    response = client.post(
        reverse(TIERS_URL),
        select(
            tiers,
            "change_prices",
            mode="percent",
            value="-50",
            _confirm="1",
            previewed="percent:5.00",
        ),
    )
    assert response.status_code == 200
    assert response.context["rows"][0]["new_price"] == "$34.12"  # 68.23 × 0.5 = 34.115
    assert prices(["BAC-10MG-90"]) == {"BAC-10MG-90": usd("68.23")}


def test_product_action_changes_all_tiers_of_the_selected_products(client, superuser, baclofen):
    client.force_login(superuser)
    other = PackageTierFactory(price=usd("10.00"))
    before = {t.sku: t.price for t in PackageTier.objects.filter(dosage__product=baclofen)}
    url = reverse(PRODUCTS_URL)
    preview = client.post(
        url, select([baclofen], "change_prices", mode="percent", value="5", _preview="1")
    )
    assert len(preview.context["rows"]) == 12
    client.post(url, select([baclofen], "change_prices", mode="percent", value="5", _confirm="1"))
    after = {t.sku: t.price for t in PackageTier.objects.filter(dosage__product=baclofen)}
    assert after["BAC-10MG-90"] == usd("71.64")  # 68.23 × 1.05 = 71.6415
    assert after["BAC-25MG-270"] == usd("524.69")  # 499.70 × 1.05 = 524.685 → half-up
    assert all(after[sku] != before[sku] for sku in before)
    other.refresh_from_db()
    assert other.price == usd("10.00")


def test_pharmacist_cannot_run_the_bulk_action(client, baclofen):
    from django.core.management import call_command

    from accounts.models import User

    call_command("setup_demo_staff", "--force", stdout=io.StringIO())
    client.force_login(User.objects.get(email="pharmacist@pharmacy.example"))
    changelist = client.get(reverse(TIERS_URL)).content.decode()
    assert 'value="change_prices"' not in changelist
    tiers = list(PackageTier.objects.filter(sku="BAC-10MG-90"))
    response = client.post(
        reverse(TIERS_URL),
        select(tiers, "change_prices", mode="percent", value="-50", _confirm="1"),
    )
    assert "Change prices" not in response.content.decode()  # no preview page, just the list again
    assert prices(["BAC-10MG-90"]) == {"BAC-10MG-90": usd("68.23")}


@pytest.mark.parametrize("count", [2, 12])
def test_preview_query_budget(client, superuser, baclofen, count, django_assert_max_num_queries):
    client.force_login(superuser)
    tiers = list(PackageTier.objects.filter(dosage__product=baclofen)[:count])
    with django_assert_max_num_queries(10):
        response = client.post(
            reverse(TIERS_URL),
            select(tiers, "change_prices", mode="percent", value="5", _preview="1"),
        )
    assert len(response.context["rows"]) == count
