"""Prescription uploads: checked by content, stored privately, served only to who may see them."""

from __future__ import annotations

import os
import uuid

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from checkout.placement import order_place
from orders import services
from orders.models import Order
from prescriptions.files import check_prescription_upload, private_storage
from prescriptions.models import PatientDetails, Prescription
from tests.factories import UserFactory
from tests.orders.conftest import ADDRESS, make_cart
from tests.prescriptions.prescription_support import (
    ELF_HEADER,
    MINIMAL_PDF,
    MZ_HEADER,
    intake_for,
    make_pharmacist,
    png_bytes,
    upload,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def private_root(settings, tmp_path):
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    return settings.PRIVATE_MEDIA_ROOT


# --- Checks by content --------------------------------------------------------------------


def test_a_minimal_pdf_passes():
    checked = check_prescription_upload(upload(MINIMAL_PDF, "scan.pdf"))
    assert checked.content_type == "application/pdf" and checked.extension == "pdf"


def test_a_real_png_passes_whatever_its_name():
    checked = check_prescription_upload(upload(png_bytes(), "photo.pdf", "application/pdf"))
    assert checked.content_type == "image/png" and checked.extension == "png"


def test_a_jpeg_passes():
    jpeg = (
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
        + b"\x00" * 64
        + b"\xff\xd9"
    )
    assert (
        check_prescription_upload(upload(jpeg, "photo.jpg", "image/jpeg")).content_type
        == "image/jpeg"
    )


@pytest.mark.parametrize("content", [ELF_HEADER, MZ_HEADER], ids=["elf", "windows-exe"])
def test_a_renamed_executable_is_refused(content):
    with pytest.raises(ValidationError) as error:
        check_prescription_upload(upload(content, "prescription.pdf", "application/pdf"))
    assert error.value.code == "bad_type"


def test_text_or_html_named_pdf_is_refused():
    with pytest.raises(ValidationError):
        check_prescription_upload(upload(b"<html><script>alert(1)</script></html>", "rx.pdf"))


def test_an_oversized_file_is_refused(settings):
    settings.PRESCRIPTION_MAX_UPLOAD_BYTES = 1024
    big = MINIMAL_PDF + b"%" + b"0" * 2000 + b"\n%%EOF\n"
    with pytest.raises(ValidationError) as error:
        check_prescription_upload(upload(big, "big.pdf"))
    assert error.value.code == "too_large"
    assert check_prescription_upload(upload(MINIMAL_PDF, "small.pdf"))  # under the limit: fine


def test_the_default_limit_is_ten_megabytes():
    too_big = b"%PDF-1.4\n" + b"0" * (10 * 1024 * 1024) + b"\n%%EOF\n"
    with pytest.raises(ValidationError) as error:
        check_prescription_upload(upload(too_big, "big.pdf"))
    assert error.value.code == "too_large"


def test_an_empty_or_truncated_pdf_is_refused():
    with pytest.raises(ValidationError):
        check_prescription_upload(upload(b"", "empty.pdf"))
    with pytest.raises(ValidationError) as error:
        check_prescription_upload(upload(MINIMAL_PDF[:60], "cut.pdf"))
    assert error.value.code == "bad_pdf"


def test_the_storage_has_no_url():
    with pytest.raises(ValueError):
        private_storage().url("prescriptions/x.pdf")


# --- Storing: random names, private folder, written only once the order commits -------------


def _place(cart, tier, *, user=None, intake=None):
    return order_place(
        cart=cart,
        email="jane@example.com",
        address=ADDRESS,
        shipping_method="standard",
        user=user,
        prescription=intake or intake_for(tier),
    )


def test_the_file_gets_a_random_name_in_the_private_folder(
    localstripe, baclofen_90, private_root, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        placed = _place(make_cart(tier=baclofen_90), baclofen_90)
    prescription = Prescription.objects.get(order=placed.order)
    path = prescription.file.path
    assert path.startswith(str(private_root))
    name = os.path.basename(path)
    assert "Jane" not in name and "prescription" not in name
    uuid.UUID(name.split(".")[0])  # a UUID, nothing guessable
    with open(path, "rb") as handle:
        assert handle.read() == MINIMAL_PDF


def test_a_refused_checkout_leaves_no_file_and_no_records(
    localstripe, baclofen_90, private_root, django_capture_on_commit_callbacks
):
    baclofen_90.stock = 1
    baclofen_90.save()
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(services.OrderError):
        _place(make_cart(tier=baclofen_90, packages=2), baclofen_90)  # not enough stock
    assert (
        not Order.objects.exists()
        and not Prescription.objects.exists()
        and not PatientDetails.objects.exists()
    )
    assert not private_root.exists() or not any(private_root.rglob("*.pdf"))


def test_a_failure_after_the_prescriptions_leaves_no_file(
    localstripe, baclofen_90, private_root, django_capture_on_commit_callbacks
):
    intake = intake_for(baclofen_90)
    intake = type(intake)(**{**intake.__dict__, "items": ()})  # nothing for the prescription line
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(services.OrderError, match="prescription"),
    ):
        _place(make_cart(tier=baclofen_90), baclofen_90, intake=intake)
    assert not Order.objects.exists() and not PatientDetails.objects.exists()
    assert not private_root.exists() or not any(private_root.rglob("*"))


# --- Serving: the owner, the guest with the link, pharmacists; 404 for everyone else --------


@pytest.fixture
def owned(localstripe, baclofen_90, customer, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        placed = _place(make_cart(tier=baclofen_90, user=customer), baclofen_90, user=customer)
    return Prescription.objects.get(order=placed.order)


def test_the_owner_gets_the_file_with_safe_headers(client, owned, customer):
    client.force_login(customer)
    response = client.get(reverse("prescriptions:prescription_file", args=[owned.pk]))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == MINIMAL_PDF
    assert response["Content-Type"] == "application/pdf"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "private, no-store"
    assert response["Content-Disposition"].startswith("inline")
    assert "Jane" not in response["Content-Disposition"]


def test_a_pharmacist_gets_the_file(client, owned):
    client.force_login(make_pharmacist())
    assert (
        client.get(reverse("prescriptions:prescription_file", args=[owned.pk])).status_code == 200
    )


def test_another_customer_staff_member_and_anonymous_get_404(client, owned):
    url = reverse("prescriptions:prescription_file", args=[owned.pk])
    assert client.get(url).status_code == 404
    client.force_login(UserFactory())
    assert client.get(url).status_code == 404
    client.force_login(UserFactory(is_staff=True))  # staff, but not a pharmacist
    assert client.get(url).status_code == 404
    assert (
        client.get(reverse("prescriptions:prescription_file", args=[uuid.uuid4()])).status_code
        == 404
    )


def test_a_guest_needs_the_signed_order_link(
    client, localstripe, baclofen_90, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        placed = _place(make_cart(tier=baclofen_90), baclofen_90)
    prescription = Prescription.objects.get(order=placed.order)
    url = reverse("prescriptions:prescription_file", args=[prescription.pk])
    assert client.get(url).status_code == 404
    assert client.get(url, {"t": "forged"}).status_code == 404
    assert client.get(url, {"t": services.order_access_token(placed.order)}).status_code == 200


def test_files_are_not_under_the_public_media_root(settings, owned):
    assert not os.path.abspath(owned.file.path).startswith(
        os.path.abspath(settings.MEDIA_ROOT) + os.sep
    )
