"""Tier prices out to CSV and back in through the admin, all or nothing."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from djmoney.money import Money

from catalog.models import PackageTier
from catalog.resources import PackageTierPriceResource
from tests.factories import UserFactory

IMPORT_URL = "admin:catalog_packagetier_import"
PROCESS_URL = "admin:catalog_packagetier_process_import"
EXPORT_URL = "admin:catalog_packagetier_export"


def usd(value) -> Money:
    return Money(value, "USD")


@pytest.fixture
def superuser(db):
    return UserFactory(email="boss@pharmacy.example", is_staff=True, is_superuser=True)


def export_csv(client) -> str:
    fields = ["sku", "product", "strength", "quantity", "price", "is_active"]
    data = {"format": "0", "resource": "0"}
    data.update({f"packagetierpriceresource_{f}": "on" for f in fields})
    response = client.post(reverse(EXPORT_URL), data)
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/csv")
    return response.content.decode("utf-8-sig")


def rows_of(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def to_csv(rows: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(
        out, fieldnames=["sku", "product", "strength", "quantity", "price", "is_active"]
    )
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def upload(client, content: bytes):
    return client.post(
        reverse(IMPORT_URL),
        {
            "format": "0",
            "resource": "0",
            "import_file": SimpleUploadedFile("prices.csv", content, "text/csv"),
        },
    )


def confirm(client, preview):
    form = preview.context["confirm_form"]
    return client.post(
        reverse(PROCESS_URL), {k: form.initial[k] for k in form.initial}, follow=True
    )


def all_prices():
    return {t.sku: (t.price, t.is_active) for t in PackageTier.objects.all()}


def test_export_has_the_agreed_columns(client, superuser, baclofen):
    client.force_login(superuser)
    rows = rows_of(export_csv(client))
    assert len(rows) == 12
    row = next(r for r in rows if r["sku"] == "BAC-10MG-90")
    assert row == {
        "sku": "BAC-10MG-90",
        "product": "Baclofen",
        "strength": "10mg",
        "quantity": "90",
        "price": "68.23",
        "is_active": "1",
    }


def test_round_trip_preview_then_confirm_applies_changes_with_history(client, superuser, baclofen):
    client.force_login(superuser)
    rows = rows_of(export_csv(client))
    for row in rows:
        if row["sku"] == "BAC-10MG-90":
            row["price"] = "70.00"
            row["product"] = "Something else"  # read-only: ignored
            row["quantity"] = "999"  # read-only: ignored
        if row["sku"] == "BAC-25MG-30":
            row["is_active"] = "0"
    preview = upload(client, to_csv(rows))
    assert preview.status_code == 200
    result = preview.context["result"]
    assert not result.has_errors() and not result.has_validation_errors()
    assert result.totals["update"] == 2
    assert result.totals["skip"] == 10
    # The dry run changed nothing.
    assert PackageTier.objects.get(sku="BAC-10MG-90").price == usd("68.23")

    done = confirm(client, preview)
    assert done.status_code == 200
    tier = PackageTier.objects.get(sku="BAC-10MG-90")
    assert tier.price == usd("70.00")
    assert tier.quantity == 90
    assert tier.dosage.product.name == "Baclofen"
    assert PackageTier.objects.get(sku="BAC-25MG-30").is_active is False
    record = tier.history.first()
    assert record.history_user == superuser
    assert record.prev_record.price == usd("68.23")
    # Untouched rows got no history record.
    assert PackageTier.objects.get(sku="BAC-10MG-60").history.count() == 1


@pytest.mark.parametrize(
    "bad_row, message",
    [
        ({"sku": "NOPE-1", "price": "10.00"}, "unknown SKU NOPE-1"),
        ({"sku": "BAC-10MG-120", "price": "12,3x"}, "is not a number"),
        ({"sku": "BAC-10MG-120", "price": "0"}, "must be more than zero"),
        (
            {"sku": "BAC-10MG-90", "price": "71.00"},
            "SKU BAC-10MG-90 appears again (first on row 1)",
        ),
        ({"sku": "BAC-10MG-120", "price": "80.00", "is_active": "maybe"}, "is not yes/no"),
    ],
    ids=["unknown-sku", "bad-number", "zero-price", "duplicate-sku", "bad-flag"],
)
def test_bad_rows_are_reported_by_row_number_and_nothing_is_applied(
    client, superuser, baclofen, bad_row, message
):
    client.force_login(superuser)
    before = all_prices()
    rows = [
        {
            "sku": "BAC-10MG-90",
            "product": "Baclofen",
            "strength": "10mg",
            "quantity": "90",
            "price": "70.00",
            "is_active": "1",
        },
        {
            "sku": "BAC-10MG-180",
            "product": "Baclofen",
            "strength": "10mg",
            "quantity": "180",
            "price": "110.00",
            "is_active": "1",
        },
        {"product": "", "strength": "", "quantity": "", "is_active": "1", **bad_row},
    ]
    preview = upload(client, to_csv(rows))
    assert preview.status_code == 200
    result = preview.context["result"]
    assert result.has_validation_errors()
    [invalid] = result.invalid_rows
    assert invalid.number == 3
    assert message in str(invalid.error_dict)
    html = preview.content.decode()
    assert "Row 3: " in html
    assert 'name="import_file_name"' not in html  # no confirm button
    assert all_prices() == before


@pytest.mark.parametrize(
    "content, line",
    [
        (to_csv([{"sku": "BAC-10MG-90\x00", "price": "70.00", "is_active": "1"}]), 2),
        (b"s\x00ku,price\r\nBAC-10MG-90,70.00\r\n", 1),
        (
            to_csv([{"sku": "BAC-10MG-90", "price": "70.00", "is_active": "1"}])
            .decode()
            .encode("utf-16-le"),
            1,
        ),
    ],
    ids=["in-a-cell", "in-the-header", "utf-16-file"],
)
def test_a_file_with_a_nul_byte_gets_a_form_error_not_a_server_error(
    client, superuser, baclofen, content, line
):
    client.force_login(superuser)
    before = all_prices()
    response = upload(client, content)
    assert response.status_code == 200
    assert response.context["form"].errors["import_file"] == [
        (
            f"The file has a NUL character (a zero byte) on line {line}. Save the sheet again as “CSV UTF-8” "
            "and upload that file."
        )
    ]
    assert 'name="import_file_name"' not in response.content.decode()
    assert all_prices() == before


def test_confirm_step_is_all_or_nothing_even_if_the_file_goes_bad_after_the_preview(
    client, superuser, baclofen
):
    client.force_login(superuser)
    before = all_prices()
    rows = [
        {
            "sku": "BAC-10MG-90",
            "product": "",
            "strength": "",
            "quantity": "",
            "price": "70.00",
            "is_active": "1",
        },
        {
            "sku": "BAC-10MG-180",
            "product": "",
            "strength": "",
            "quantity": "",
            "price": "110.00",
            "is_active": "1",
        },
    ]
    preview = upload(client, to_csv(rows))
    assert preview.context["result"].totals["update"] == 2
    # Between preview and confirm the second pack is deleted: its row now has an unknown SKU.
    PackageTier.objects.filter(sku="BAC-10MG-180").delete()
    done = confirm(client, preview)
    texts = [str(m) for m in done.context["messages"]]
    assert any("Nothing was imported" in t and "row(s) 2" in t for t in texts), texts
    after = all_prices()
    before.pop("BAC-10MG-180")
    assert after == before


@pytest.mark.parametrize("count", [2, 12])
def test_import_preview_reads_do_not_grow_with_rows(client, superuser, baclofen, count):
    """Savepoints and writes are per row by design (each save writes history); lookups are not."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(superuser)
    rows = [
        {
            "sku": t.sku,
            "product": "",
            "strength": "",
            "quantity": "",
            "price": str(t.price.amount),
            "is_active": "1",
        }
        for t in PackageTier.objects.all()[:count]
    ]
    with CaptureQueriesContext(connection) as ctx:
        preview = upload(client, to_csv(rows))
    assert preview.context["result"].totals["skip"] == count
    selects = [q for q in ctx.captured_queries if q["sql"].lstrip().upper().startswith("SELECT")]
    assert len(selects) <= 6, [q["sql"][:120] for q in selects]


def test_pricing_user_may_import_and_export_but_pharmacist_may_not_import(client, baclofen):
    from django.core.management import call_command

    from accounts.models import User

    call_command("setup_demo_staff", "--force", stdout=io.StringIO())
    client.force_login(User.objects.get(email="pricing@pharmacy.example"))
    assert client.get(reverse(IMPORT_URL)).status_code == 200
    assert len(rows_of(export_csv(client))) == 12
    client.force_login(User.objects.get(email="pharmacist@pharmacy.example"))
    assert client.get(reverse(IMPORT_URL)).status_code == 403


def test_resource_import_outside_the_admin_records_the_user(db, baclofen):
    import tablib

    user = UserFactory(email="script@pharmacy.example", is_staff=True)
    dataset = tablib.Dataset(headers=["sku", "price", "is_active"])
    dataset.append(["BAC-10MG-90", "69.00", "1"])
    result = PackageTierPriceResource().import_data(
        dataset, dry_run=False, user=user, rollback_on_validation_errors=True
    )
    assert not result.has_errors() and not result.has_validation_errors()
    tier = PackageTier.objects.get(sku="BAC-10MG-90")
    assert tier.price == usd("69.00")
    assert tier.history.first().history_user == user
