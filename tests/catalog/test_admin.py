"""Staff editing prices in the Django admin: inlines, the tier changelist, permissions."""

import io
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.urls import NoReverseMatch, reverse
from djmoney.money import Money

from catalog.models import Dosage, PackageTier
from tests.factories import DosageFactory, PackageTierFactory, ProductFactory, UserFactory


def usd(value) -> Money:
    return Money(value, "USD")


@pytest.fixture
def superuser(db):
    return UserFactory(email="boss@pharmacy.example", is_staff=True, is_superuser=True)


@pytest.fixture
def staff_groups(db):
    call_command("setup_demo_staff", "--force", stdout=io.StringIO())
    from accounts.models import User

    return {
        "pricing": User.objects.get(email="pricing@pharmacy.example"),
        "pharmacist": User.objects.get(email="pharmacist@pharmacy.example"),
    }


def dosage_10mg(product) -> Dosage:
    return product.dosages.get(strength="10mg")


def inline_post_data(
    dosage: Dosage, overrides: dict | None = None, extra_rows: list[dict] | None = None
) -> dict:
    """The POST body the dosage change form sends, built from the database like the browser would."""
    tiers = list(dosage.tiers.order_by("position", "quantity"))
    extra_rows = extra_rows or []
    data = {
        "product": dosage.product_id,
        "strength": dosage.strength,
        "strength_value": str(dosage.strength_value),
        "strength_unit": dosage.strength_unit,
        "list_price_per_pill_0": str(dosage.list_price_per_pill.amount),
        "list_price_per_pill_1": "USD",
        "tiers-TOTAL_FORMS": str(len(tiers) + len(extra_rows)),
        "tiers-INITIAL_FORMS": str(len(tiers)),
        "tiers-MIN_NUM_FORMS": "0",
        "tiers-MAX_NUM_FORMS": "1000",
        "_save": "Save",
    }
    for i, tier in enumerate(tiers):
        data.update(
            {
                f"tiers-{i}-id": str(tier.pk),
                f"tiers-{i}-dosage": str(dosage.pk),
                f"tiers-{i}-quantity": str(tier.quantity),
                f"tiers-{i}-price_0": str(tier.price.amount),
                f"tiers-{i}-price_1": "USD",
                f"tiers-{i}-sku": tier.sku,
                f"tiers-{i}-position": str(tier.position),
                f"tiers-{i}-stock": "" if tier.stock is None else str(tier.stock),
            }
        )
        if tier.is_active:
            data[f"tiers-{i}-is_active"] = "on"
    for j, row in enumerate(extra_rows, start=len(tiers)):
        data.update(
            {
                f"tiers-{j}-dosage": str(dosage.pk),
                f"tiers-{j}-quantity": str(row["quantity"]),
                f"tiers-{j}-price_0": str(row["price"]),
                f"tiers-{j}-price_1": "USD",
                f"tiers-{j}-sku": row["sku"],
                f"tiers-{j}-position": "99",
                f"tiers-{j}-stock": "",
                f"tiers-{j}-is_active": "on",
            }
        )
    for key, value in (overrides or {}).items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def tier_index(dosage: Dosage, quantity: int) -> int:
    return [t.quantity for t in dosage.tiers.order_by("position", "quantity")].index(quantity)


# --- Product and dosage pages -------------------------------------------------------------------


def test_product_page_lists_dosages_with_links_and_patient_information_inlines(
    client, superuser, baclofen
):
    client.force_login(superuser)
    response = client.get(reverse("admin:catalog_product_change", args=[baclofen.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    for dosage in baclofen.dosages.all():
        assert reverse("admin:catalog_dosage_change", args=[dosage.pk]) in html
    for prefix in ("info_sections", "dosing_guidelines", "safety_notes", "faqs"):
        assert f'name="{prefix}-TOTAL_FORMS"' in html
    assert reverse("admin:catalog_product_price_history", args=[baclofen.pk]) in html


def test_dosage_page_shows_tier_figures_from_pricing(client, superuser, baclofen, golden):
    client.force_login(superuser)
    dosage = dosage_10mg(baclofen)
    response = client.get(reverse("admin:catalog_dosage_change", args=[dosage.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    rows = golden["dosages"][0]["tiers"]
    for row in rows:
        assert f"${row['per_pill']}" in html
        assert f"${row['list_price']}" in html
    assert "13%" in html and "30%" in html
    assert html.count("Best per pill") >= 2  # the column heading and exactly one row mark
    assert html.count("★ Best per pill") == 1
    assert "Lowest 30 days" in html


def test_staff_changes_the_90_pill_price_via_the_inline(client, superuser, baclofen):
    client.force_login(superuser)
    dosage = dosage_10mg(baclofen)
    i = tier_index(dosage, 90)
    response = client.post(
        reverse("admin:catalog_dosage_change", args=[dosage.pk]),
        inline_post_data(dosage, {f"tiers-{i}-price_0": "70.00"}),
    )
    assert response.status_code == 302, response.context["errors"] if response.context else response
    tier = dosage.tiers.get(quantity=90)
    assert tier.price == usd("70.00")
    record = tier.history.first()
    assert record.history_user == superuser
    assert record.prev_record.price == usd("68.23")


def test_inline_adds_a_new_pack(client, superuser, baclofen):
    client.force_login(superuser)
    dosage = dosage_10mg(baclofen)
    response = client.post(
        reverse("admin:catalog_dosage_change", args=[dosage.pk]),
        inline_post_data(
            dosage, extra_rows=[{"quantity": 30, "price": "26.00", "sku": "BAC-10MG-30"}]
        ),
    )
    assert response.status_code == 302
    assert dosage.tiers.get(quantity=30).sku == "BAC-10MG-30"


@pytest.mark.parametrize("price", ["0", "-5.00"])
def test_inline_rejects_zero_and_negative_prices_with_a_clear_message(
    client, superuser, baclofen, price
):
    client.force_login(superuser)
    dosage = dosage_10mg(baclofen)
    i = tier_index(dosage, 90)
    response = client.post(
        reverse("admin:catalog_dosage_change", args=[dosage.pk]),
        inline_post_data(dosage, {f"tiers-{i}-price_0": price}),
    )
    assert response.status_code == 200
    assert "The price must be more than zero." in response.content.decode()
    assert dosage.tiers.get(quantity=90).price == usd("68.23")


def test_inline_rejects_a_duplicate_quantity_without_an_integrity_error(
    client, superuser, baclofen
):
    client.force_login(superuser)
    dosage = dosage_10mg(baclofen)
    response = client.post(
        reverse("admin:catalog_dosage_change", args=[dosage.pk]),
        inline_post_data(
            dosage, extra_rows=[{"quantity": 90, "price": "60.00", "sku": "BAC-10MG-90B"}]
        ),
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "There are two 90-pill packs" in html
    assert "only once per dosage" in html
    assert dosage.tiers.count() == 6
    assert not PackageTier.objects.filter(sku="BAC-10MG-90B").exists()


def test_price_above_list_is_saved_but_flagged(client, superuser, baclofen):
    client.force_login(superuser)
    dosage = dosage_10mg(baclofen)
    i = tier_index(dosage, 90)
    response = client.post(
        reverse("admin:catalog_dosage_change", args=[dosage.pk]),
        inline_post_data(dosage, {f"tiers-{i}-price_0": "80.00"}),
        follow=True,
    )
    assert dosage.tiers.get(quantity=90).price == usd("80.00")
    texts = [str(m) for m in response.context["messages"]]
    assert any("× 90" in t and "no saving shown" in t for t in texts), texts
    page = client.get(reverse("admin:catalog_dosage_change", args=[dosage.pk])).content.decode()
    assert "No saving shown" in page


def test_larger_pack_dearer_per_pill_is_warned_naming_both_packs(client, superuser, baclofen):
    client.force_login(superuser)
    dosage = dosage_10mg(baclofen)
    i = tier_index(dosage, 180)
    # 180 pills at $130.00 is $0.72 a pill, dearer than the 120-pill pack at $0.71.
    response = client.post(
        reverse("admin:catalog_dosage_change", args=[dosage.pk]),
        inline_post_data(dosage, {f"tiers-{i}-price_0": "130.00"}),
        follow=True,
    )
    texts = [str(m) for m in response.context["messages"]]
    assert any("180-pill pack costs more per pill" in t and "120-pill pack" in t for t in texts), (
        texts
    )
    assert dosage.tiers.get(quantity=180).price == usd("130.00")


# --- The tier changelist --------------------------------------------------------------------


def changelist_post_data(tiers, changes: dict[int, str]) -> dict:
    data = {
        "form-TOTAL_FORMS": str(len(tiers)),
        "form-INITIAL_FORMS": str(len(tiers)),
        "form-MIN_NUM_FORMS": "0",
        "form-MAX_NUM_FORMS": "1000",
        "_save": "Save",
    }
    for i, tier in enumerate(tiers):
        data[f"form-{i}-id"] = str(tier.pk)
        data[f"form-{i}-price_0"] = changes.get(tier.pk, str(tier.price.amount))
        data[f"form-{i}-price_1"] = "USD"
        if tier.is_active:
            data[f"form-{i}-is_active"] = "on"
    return data


def test_staff_changes_the_90_pill_price_in_the_tier_changelist(client, superuser, baclofen):
    client.force_login(superuser)
    url = reverse("admin:catalog_packagetier_changelist") + "?q=BAC-10MG-90"
    page = client.get(url)
    tiers = list(page.context["cl"].result_list)
    assert [t.sku for t in tiers] == ["BAC-10MG-90"]
    response = client.post(url, changelist_post_data(tiers, {tiers[0].pk: "70.00"}))
    assert response.status_code == 302
    tier = PackageTier.objects.get(sku="BAC-10MG-90")
    assert tier.price == usd("70.00")
    assert tier.history.first().history_user == superuser
    # $70.00 for 90 pills: $0.78 a pill, 11% off the $78.27 list price.
    html = client.get("/products/baclofen/").content.decode()
    assert "70.00" in html and "0.78" in html and "11%" in html


def test_changelist_rejects_a_zero_price(client, superuser, baclofen):
    client.force_login(superuser)
    url = reverse("admin:catalog_packagetier_changelist") + "?q=BAC-10MG-90"
    tiers = list(client.get(url).context["cl"].result_list)
    response = client.post(url, changelist_post_data(tiers, {tiers[0].pk: "0.00"}))
    assert response.status_code == 200
    assert "The price must be more than zero." in response.content.decode()
    assert PackageTier.objects.get(sku="BAC-10MG-90").price == usd("68.23")


def test_changelist_search_and_filters(client, superuser, baclofen):
    other = PackageTierFactory(
        sku="IBU-200-24", dosage=DosageFactory(product=ProductFactory(name="Ibuprofen"))
    )
    client.force_login(superuser)
    url = reverse("admin:catalog_packagetier_changelist")
    by_product = client.get(url, {"q": "baclofen"}).context["cl"].result_list
    assert len(by_product) == 12
    by_sku = client.get(url, {"q": "IBU-200"}).context["cl"].result_list
    assert [t.pk for t in by_sku] == [other.pk]
    by_class = (
        client.get(url, {"dosage__product__legal_class__exact": "prescription"})
        .context["cl"]
        .result_list
    )
    assert len(by_class) == 12
    by_category = client.get(
        url, {"dosage__product__category__id__exact": baclofen.category_id}
    ).context["cl"]
    assert by_category.result_count == 12


def test_changelist_marks_best_per_pill_among_the_dosages_active_tiers(client, superuser, baclofen):
    client.force_login(superuser)
    PackageTier.objects.filter(sku="BAC-10MG-360").update(is_active=False)
    cl = client.get(reverse("admin:catalog_packagetier_changelist"), {"q": "BAC-10MG"}).context[
        "cl"
    ]
    best = [t.sku for t in cl.result_list if t.admin_figures.best_per_pill]
    assert best == ["BAC-10MG-270"]


def _make_tiers(count: int) -> None:
    per_dosage = 5
    for d in range(count // per_dosage):
        dosage = DosageFactory(product=ProductFactory(), list_price_per_pill=usd("1.00000"))
        for q in range(per_dosage):
            PackageTierFactory(dosage=dosage, quantity=30 * (q + 1), price=usd(25 * (q + 1)))


@pytest.mark.parametrize("count", [5, 50])
def test_tier_changelist_query_count_does_not_grow(
    client, superuser, count, django_assert_max_num_queries
):
    _make_tiers(count)
    client.force_login(superuser)
    with django_assert_max_num_queries(12):
        response = client.get(reverse("admin:catalog_packagetier_changelist"))
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == count


def test_tier_changelist_query_count_is_the_same_for_5_and_50(client, superuser):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(superuser)
    _make_tiers(5)
    client.get(reverse("admin:catalog_packagetier_changelist"))  # warm the session/content types
    with CaptureQueriesContext(connection) as five:
        client.get(reverse("admin:catalog_packagetier_changelist"))
    _make_tiers(45)
    with CaptureQueriesContext(connection) as fifty:
        response = client.get(reverse("admin:catalog_packagetier_changelist"))
    assert len(response.context["cl"].result_list) == 50
    assert len(fifty.captured_queries) == len(five.captured_queries)


@pytest.mark.parametrize("tiers_per_dosage", [2, 12])
def test_dosage_page_query_budget(
    client, superuser, tiers_per_dosage, django_assert_max_num_queries
):
    dosage = DosageFactory()
    for q in range(tiers_per_dosage):
        PackageTierFactory(dosage=dosage, quantity=10 * (q + 1), price=usd(10 * (q + 1)))
    client.force_login(superuser)
    with django_assert_max_num_queries(12):
        response = client.get(reverse("admin:catalog_dosage_change", args=[dosage.pk]))
    assert response.status_code == 200


@pytest.mark.parametrize("dosages", [1, 8])
def test_product_page_query_budget(client, superuser, dosages, django_assert_max_num_queries):
    product = ProductFactory()
    for d in range(dosages):
        DosageFactory(product=product, strength_value=Decimal(d + 1))
    client.force_login(superuser)
    with django_assert_max_num_queries(16):
        response = client.get(reverse("admin:catalog_product_change", args=[product.pk]))
    assert response.status_code == 200


# --- Permissions ------------------------------------------------------------------------------


def test_anonymous_user_is_redirected_to_login(client, baclofen):
    tier = PackageTier.objects.get(sku="BAC-10MG-90")
    for url in (
        reverse("admin:catalog_packagetier_changelist"),
        reverse("admin:catalog_packagetier_change", args=[tier.pk]),
        reverse("admin:catalog_product_price_history", args=[baclofen.pk]),
        reverse("admin:catalog_packagetier_import"),
    ):
        response = client.get(url)
        assert response.status_code == 302
        assert reverse("admin:login") in response["Location"]


def test_pricing_user_can_change_a_tier_price(client, staff_groups, baclofen):
    client.force_login(staff_groups["pricing"])
    tier = PackageTier.objects.get(sku="BAC-10MG-90")
    response = client.post(
        reverse("admin:catalog_packagetier_change", args=[tier.pk]),
        {
            "dosage": tier.dosage_id,
            "quantity": "90",
            "price_0": "66.00",
            "price_1": "USD",
            "sku": tier.sku,
            "is_active": "on",
            "position": str(tier.position),
            "stock": "",
        },
    )
    assert response.status_code == 302
    tier.refresh_from_db()
    assert tier.price == usd("66.00")
    assert tier.history.first().history_user == staff_groups["pricing"]


def test_pricing_group_has_no_orders_permission_and_cannot_open_orders_admin(client, staff_groups):
    user = staff_groups["pricing"]
    assert not Permission.objects.filter(
        group__name="pricing", content_type__app_label="orders"
    ).exists()
    assert not any(p.startswith("orders.") for p in user.get_all_permissions())
    client.force_login(user)
    try:
        url = reverse("admin:app_list", kwargs={"app_label": "orders"})
    except NoReverseMatch:
        return  # no orders admin registered yet: nothing to open
    # Django answers an app index with no visible models with 404, each model page with 403.
    assert client.get(url).status_code in (403, 404)
    from django.contrib import admin as django_admin

    order_models = [m for m in django_admin.site._registry if m._meta.app_label == "orders"]
    assert order_models
    for model in order_models:
        changelist = reverse(f"admin:orders_{model._meta.model_name}_changelist")
        assert client.get(changelist).status_code == 403, changelist


def test_pharmacist_can_view_but_not_change_a_tier_price(client, staff_groups, baclofen):
    client.force_login(staff_groups["pharmacist"])
    tier = PackageTier.objects.get(sku="BAC-10MG-90")
    assert (
        client.get(reverse("admin:catalog_packagetier_change", args=[tier.pk])).status_code == 200
    )
    response = client.post(
        reverse("admin:catalog_packagetier_change", args=[tier.pk]),
        {
            "dosage": tier.dosage_id,
            "quantity": "90",
            "price_0": "1.00",
            "price_1": "USD",
            "sku": tier.sku,
            "is_active": "on",
            "position": str(tier.position),
        },
    )
    assert response.status_code == 403
    tier.refresh_from_db()
    assert tier.price == usd("68.23")
    assert client.get(reverse("admin:catalog_packagetier_import")).status_code == 403


# --- The storefront after an admin change -----------------------------------------------------


def test_product_page_shows_the_new_price_on_the_next_request(client, superuser, baclofen):
    client.force_login(superuser)
    client.get(
        reverse("catalog:product_detail", kwargs={"slug": "baclofen"})
    )  # would prime any cache
    dosage = dosage_10mg(baclofen)
    i = tier_index(dosage, 90)
    client.post(
        reverse("admin:catalog_dosage_change", args=[dosage.pk]),
        inline_post_data(dosage, {f"tiers-{i}-price_0": "63.00"}),
    )
    html = client.get("/products/baclofen/").content.decode()
    # $63.00 for 90 pills: $0.70 a pill, 20% off the $78.27 list price.
    assert "63.00" in html
    assert "0.70" in html
    assert "20%" in html


def test_adding_a_dosage_with_its_packs_in_one_go(client, superuser, baclofen):
    client.force_login(superuser)
    data = {
        "product": baclofen.pk,
        "strength": "5mg",
        "strength_value": "5",
        "strength_unit": "mg",
        "list_price_per_pill_0": "0.50000",
        "list_price_per_pill_1": "USD",
        "tiers-TOTAL_FORMS": "2",
        "tiers-INITIAL_FORMS": "0",
        "tiers-MIN_NUM_FORMS": "0",
        "tiers-MAX_NUM_FORMS": "1000",
        "_save": "Save",
    }
    for i, (quantity, price) in enumerate([(30, "15.00"), (60, "27.00")]):
        data.update(
            {
                f"tiers-{i}-quantity": str(quantity),
                f"tiers-{i}-price_0": price,
                f"tiers-{i}-price_1": "USD",
                f"tiers-{i}-sku": f"BAC-5MG-{quantity}",
                f"tiers-{i}-position": str(i),
                f"tiers-{i}-stock": "",
                f"tiers-{i}-is_active": "on",
            }
        )
    assert client.get(reverse("admin:catalog_dosage_add")).status_code == 200
    response = client.post(reverse("admin:catalog_dosage_add"), data)
    assert response.status_code == 302
    dosage = baclofen.dosages.get(strength="5mg")
    assert sorted(dosage.tiers.values_list("quantity", flat=True)) == [30, 60]
    assert client.get(reverse("admin:catalog_product_add")).status_code == 200


def test_changelist_edit_warns_when_a_larger_pack_is_dearer_per_pill(client, superuser, baclofen):
    client.force_login(superuser)
    url = reverse("admin:catalog_packagetier_changelist") + "?q=BAC-10MG-360"
    tiers = list(client.get(url).context["cl"].result_list)
    response = client.post(url, changelist_post_data(tiers, {tiers[0].pk: "240.00"}), follow=True)
    texts = [str(m) for m in response.context["messages"]]
    assert any("360-pill pack costs more per pill" in t and "270-pill pack" in t for t in texts), (
        texts
    )


# --- setup_demo_staff -------------------------------------------------------------------------


def test_setup_demo_staff_is_idempotent_and_prints_credentials(db, settings):
    import io

    from accounts.models import User

    settings.DEBUG = True
    out = io.StringIO()
    call_command("setup_demo_staff", "--pricing-password", "price-setter-2024", stdout=out)
    call_command("setup_demo_staff", "--pricing-password", "price-setter-2024", stdout=out)
    text = out.getvalue()
    assert "for local use only" in text
    assert "pricing@pharmacy.example" in text and "price-setter-2024" in text
    assert User.objects.filter(email__endswith="@pharmacy.example").count() == 3
    admin_user = User.objects.get(email="admin@pharmacy.example")
    assert admin_user.is_superuser and admin_user.is_staff
    pricing = User.objects.get(email="pricing@pharmacy.example")
    assert pricing.check_password("price-setter-2024")
    assert list(pricing.groups.values_list("name", flat=True)) == ["pricing"]
    assert pricing.has_perm("catalog.change_packagetier") and pricing.has_perm(
        "catalog.change_dosage"
    )
    pharmacist = User.objects.get(email="pharmacist@pharmacy.example")
    assert pharmacist.has_perm("catalog.view_packagetier")
    assert not pharmacist.has_perm("catalog.change_packagetier")
    assert not pharmacist.has_perm("catalog.change_dosage")


def test_setup_demo_staff_refuses_demo_users_when_debug_is_off(db, settings):
    from django.core.management.base import CommandError

    from accounts.models import User

    settings.DEBUG = False
    with pytest.raises(CommandError, match="--force"):
        call_command("setup_demo_staff", stdout=io.StringIO())
    assert not User.objects.filter(email__endswith="@pharmacy.example").exists()
    from django.contrib.auth.models import Group

    assert (
        Group.objects.filter(name__in=["pricing", "pharmacist"]).count() == 2
    )  # groups are still set up
    call_command("setup_demo_staff", "--force", stdout=io.StringIO())
    assert User.objects.filter(email__endswith="@pharmacy.example").count() == 3


def test_setup_demo_staff_keeps_permissions_other_apps_added_to_pharmacist(db, settings):
    from django.contrib.auth.models import Group

    settings.DEBUG = True
    call_command("setup_demo_staff", stdout=io.StringIO())
    extra = Permission.objects.get(codename="view_user")
    Group.objects.get(name="pharmacist").permissions.add(extra)
    call_command("setup_demo_staff", stdout=io.StringIO())
    assert Group.objects.get(name="pharmacist").permissions.filter(pk=extra.pk).exists()


def test_the_price_history_of_a_product_that_is_gone_says_so_on_the_admin_index(client, superuser):
    client.force_login(superuser)
    response = client.get(reverse("admin:catalog_product_price_history", args=[987654]))
    assert response.status_code == 302 and response["Location"] == reverse("admin:index")
    shown = [str(m) for m in client.get(reverse("admin:index")).context["messages"]]
    assert shown == ["Product with ID “987654” doesn’t exist. Perhaps it was deleted?"]
