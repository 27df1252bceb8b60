"""The prescription step of checkout: patient, and a prescription copy or the prescriber per item."""

from __future__ import annotations

from datetime import date

import pytest
from django.urls import reverse
from django.utils import timezone

from orders.models import Order
from prescriptions.models import PatientDetails, Prescription
from tests.orders.conftest import attach_to_session as attach
from tests.orders.conftest import make_cart, shown_figures
from tests.prescriptions.prescription_support import ELF_HEADER, MINIMAL_PDF, png_bytes, upload

pytestmark = pytest.mark.django_db

ADDRESS = {
    "email": "jane@example.com",
    "name": "Jane Doe",
    "line1": "100 River Street",
    "city": "Albany",
    "state": "NY",
    "zip_code": "12207",
    "shipping_method": "standard",
}


@pytest.fixture(autouse=True)
def private_root(settings, tmp_path):
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    return settings.PRIVATE_MEDIA_ROOT


def post(client, data, **files):
    form = {**ADDRESS, "figures": shown_figures(client), **data, **files}
    return client.post(reverse("checkout:checkout"), form, HTTP_ACCEPT="application/json")


def patient(born=date(1980, 5, 17)):
    return {
        "patient_name": "Jane Doe",
        "date_of_birth": born.isoformat(),
        "allergies": "Penicillin",
    }


def test_the_page_asks_for_the_prescription_and_explains_the_upload(client, baclofen_90):
    attach(client, make_cart(tier=baclofen_90))
    html = client.get(reverse("checkout:checkout")).content.decode()
    assert 'enctype="multipart/form-data"' in html
    assert (
        f'name="rx_{baclofen_90.pk}_file"' in html
        and f'name="rx_{baclofen_90.pk}_prescriber_licence"' in html
    )
    assert "verifies the original with your prescriber" in html
    assert 'name="date_of_birth"' in html


def test_no_prescription_step_for_general_sale(client, general_tier):
    attach(client, make_cart(tier=general_tier))
    html = client.get(reverse("checkout:checkout")).content.decode()
    assert "rx_" not in html and 'name="patient_name"' not in html


def test_an_upload_places_the_order_with_patient_and_private_copy(
    client, localstripe, baclofen_90, private_root, django_capture_on_commit_callbacks
):
    attach(client, make_cart(tier=baclofen_90))
    with django_capture_on_commit_callbacks(execute=True):
        response = post(
            client,
            {**patient(), f"rx_{baclofen_90.pk}_method": "upload"},
            **{
                f"rx_{baclofen_90.pk}_file": upload(png_bytes(), "my prescription.png", "image/png")
            },
        )
    assert response.status_code == 200, response.content
    order = Order.objects.get(number=response.json()["order_number"])
    assert order.patient.name == "Jane Doe" and order.patient.allergies == "Penicillin"
    prescription = order.prescriptions.get()
    assert prescription.content_type == "image/png" and prescription.line.tier_id == baclofen_90.pk
    assert (
        prescription.file.path.startswith(str(private_root))
        and "my prescription" not in prescription.file.name
    )
    with open(prescription.file.path, "rb") as handle:
        assert handle.read() == png_bytes()


def test_prescriber_details_instead_of_an_upload(client, localstripe, baclofen_90):
    attach(client, make_cart(tier=baclofen_90))
    response = post(
        client,
        {
            **patient(),
            f"rx_{baclofen_90.pk}_method": "prescriber",
            f"rx_{baclofen_90.pk}_prescriber_name": "Dr. Ruth Okafor",
            f"rx_{baclofen_90.pk}_prescriber_phone": "518-555-0101",
            f"rx_{baclofen_90.pk}_prescriber_licence": "1234567890",
        },
    )
    assert response.status_code == 200, response.content
    prescription = Prescription.objects.get()
    assert not prescription.has_file and prescription.prescriber_licence == "1234567890"


@pytest.mark.parametrize(
    "case",
    [
        "renamed_executable",
        "missing_file",
        "incomplete_prescriber",
        "under_age",
        "no_patient",
        "future_birth",
    ],
)
def test_bad_input_is_a_form_error_and_nothing_is_created(
    client, localstripe, baclofen_90, private_root, case, django_capture_on_commit_callbacks
):
    attach(client, make_cart(tier=baclofen_90))
    tier = baclofen_90.pk
    data, files, field = {**patient(), f"rx_{tier}_method": "upload"}, {}, f"rx_{tier}_file"
    if case == "renamed_executable":
        files = {f"rx_{tier}_file": upload(ELF_HEADER, "prescription.pdf", "application/pdf")}
    elif case == "incomplete_prescriber":
        data.update({f"rx_{tier}_method": "prescriber", f"rx_{tier}_prescriber_name": "Dr. Okafor"})
        field = f"rx_{tier}_prescriber_licence"
    elif case == "under_age":
        today = timezone.localdate()
        data["date_of_birth"] = date(today.year - 17, 1, 1).isoformat()
        files, field = {f"rx_{tier}_file": upload(MINIMAL_PDF)}, "date_of_birth"
    elif case == "future_birth":
        data["date_of_birth"] = date(timezone.localdate().year + 1, 1, 1).isoformat()
        files, field = {f"rx_{tier}_file": upload(MINIMAL_PDF)}, "date_of_birth"
    elif case == "no_patient":
        del data["patient_name"]
        files, field = {f"rx_{tier}_file": upload(MINIMAL_PDF)}, "patient_name"
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, data, **files)
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert (
        not Order.objects.exists()
        and not PatientDetails.objects.exists()
        and not Prescription.objects.exists()
    )
    assert not private_root.exists() or not any(private_root.rglob("*.*"))


def test_the_minimum_age_is_a_setting(client, localstripe, baclofen_90, settings):
    settings.PRESCRIPTION_MINIMUM_AGE = 0
    attach(client, make_cart(tier=baclofen_90))
    child = date(timezone.localdate().year - 10, 1, 1)
    response = post(
        client,
        {**patient(child), f"rx_{baclofen_90.pk}_method": "upload"},
        **{f"rx_{baclofen_90.pk}_file": upload(MINIMAL_PDF)},
    )
    assert response.status_code == 200, response.content


def test_a_signed_in_customer_is_prefilled_from_their_patient_profile(
    client, baclofen_90, customer
):
    from accounts.models import PatientProfile

    PatientProfile.objects.create(
        user=customer,
        date_of_birth=date(1975, 3, 9),
        allergies="Sulfa drugs",
        prescriber_name="Dr. Ruth Okafor",
        prescriber_phone="518-555-0101",
        prescriber_licence="1234567890",
    )
    client.force_login(customer)
    make_cart(tier=baclofen_90, user=customer)
    html = client.get(reverse("checkout:checkout")).content.decode()
    assert 'value="1975-03-09"' in html and "Sulfa drugs" in html and 'value="1234567890"' in html
