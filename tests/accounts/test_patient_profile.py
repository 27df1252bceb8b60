"""The patient profile: kept up to date by the customer, read by the prescription step."""

import datetime

import pytest
from django.contrib.auth.models import AnonymousUser
from django.urls import reverse
from django.utils import timezone

from accounts.models import PatientProfile
from accounts.services import patient_profile_for

from .conftest import PatientProfileFactory

pytestmark = pytest.mark.django_db

DATA = {
    "date_of_birth": "1980-05-17",
    "phone": "+1 555 0142",
    "allergies": "Penicillin (hives)",
    "current_medicines": "Metformin 500mg twice daily",
    "prescriber_name": "Dr. Jordan Lee",
    "prescriber_phone": "+1 555 0199",
    "prescriber_licence": "1234567893",
}


def test_create_and_update_the_profile(signed_in, customer):
    assert signed_in.get(reverse("accounts:patient_profile")).status_code == 200
    assert not PatientProfile.objects.exists()  # viewing the form writes nothing
    response = signed_in.post(reverse("accounts:patient_profile"), DATA)
    assert response.status_code == 302
    assert patient_profile_for(customer) == {**DATA, "date_of_birth": datetime.date(1980, 5, 17)}

    signed_in.post(reverse("accounts:patient_profile"), {**DATA, "allergies": "None known"})
    assert PatientProfile.objects.filter(user=customer).count() == 1
    assert patient_profile_for(customer)["allergies"] == "None known"
    page = signed_in.get(reverse("accounts:dashboard")).content.decode()
    assert "None known" in page and "Dr. Jordan Lee" in page


def test_the_form_is_prefilled_with_the_saved_profile(signed_in, customer):
    PatientProfileFactory(user=customer, date_of_birth=datetime.date(1975, 1, 2))
    page = signed_in.get(reverse("accounts:patient_profile")).content.decode()
    assert 'value="1975-01-02"' in page
    assert "Lisinopril 10mg daily" in page


@pytest.mark.parametrize(
    "dob, message",
    [
        ("tomorrow", "cannot be in the future"),
        ("1850-01-01", "check the year"),
        ("17/05/1980x", "Enter a valid date"),
    ],
)
def test_a_bad_date_of_birth_is_a_form_error(signed_in, customer, dob, message):
    if dob == "tomorrow":
        dob = (timezone.localdate() + datetime.timedelta(days=1)).isoformat()
    response = signed_in.post(reverse("accounts:patient_profile"), {**DATA, "date_of_birth": dob})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not PatientProfile.objects.exists()


def test_patient_profile_for_without_a_profile(customer):
    assert patient_profile_for(customer) is None
    assert patient_profile_for(AnonymousUser()) is None


@pytest.mark.parametrize(
    "target", ["id", "profile", "//evil.com/", "javascript:alert(1)", "/no-such-page/"]
)
def test_after_saving_a_bare_word_or_foreign_next_falls_back_to_the_account_page(
    signed_in, customer, target
):
    response = signed_in.post(reverse("accounts:patient_profile"), {**DATA, "next": target})
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:dashboard") + "#profile"
    assert PatientProfile.objects.filter(user=customer).exists()


def test_after_saving_a_next_page_of_this_site_is_followed(signed_in, customer):
    target = reverse("accounts:dashboard")
    response = signed_in.post(reverse("accounts:patient_profile") + "?" + f"next={target}", DATA)
    assert response["Location"] == target
