"""Saved shipping addresses and what checkout reads from them."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.urls import reverse
from django.utils.http import urlencode

from accounts.models import Address
from accounts.services import default_address_for

from .conftest import AddressFactory

pytestmark = pytest.mark.django_db

VALID = {
    "full_name": "Alex Morgan",
    "line1": "12 Elm Street",
    "line2": "Apt 4",
    "city": "Albany",
    "state": "NY",
    "postal_code": "12207-1234",
}


def test_first_address_becomes_the_default_and_prefills_checkout(signed_in, customer):
    response = signed_in.post(reverse("accounts:address_add"), VALID)
    assert response.status_code == 302
    address = Address.objects.get(user=customer)
    assert address.is_default
    assert default_address_for(customer) == {
        "full_name": "Alex Morgan",
        "line1": "12 Elm Street",
        "line2": "Apt 4",
        "city": "Albany",
        "state": "NY",
        "postal_code": "12207-1234",
    }
    page = signed_in.get(reverse("accounts:dashboard")).content.decode()
    assert "12 Elm Street" in page and "Default" in page


def test_adding_a_second_default_moves_the_default(signed_in, customer):
    first = AddressFactory(user=customer, is_default=True)
    signed_in.post(
        reverse("accounts:address_add"), {**VALID, "line1": "99 Oak Road", "is_default": "on"}
    )
    first.refresh_from_db()
    assert not first.is_default
    assert default_address_for(customer)["line1"] == "99 Oak Road"
    assert Address.objects.filter(user=customer, is_default=True).count() == 1


def test_adding_a_non_default_keeps_the_default(signed_in, customer):
    AddressFactory(user=customer, is_default=True, line1="1 First Street")
    signed_in.post(reverse("accounts:address_add"), {**VALID, "line1": "2 Second Street"})
    assert default_address_for(customer)["line1"] == "1 First Street"


def test_make_default_and_edit(signed_in, customer):
    first = AddressFactory(user=customer, is_default=True)
    second = AddressFactory(user=customer)
    response = signed_in.post(reverse("accounts:address_make_default", args=[second.pk]))
    assert response.status_code == 302
    first.refresh_from_db()
    second.refresh_from_db()
    assert second.is_default and not first.is_default

    response = signed_in.post(
        reverse("accounts:address_edit", args=[first.pk]),
        {**VALID, "city": "Buffalo", "postal_code": "14201"},
    )
    assert response.status_code == 302
    first.refresh_from_db()
    assert (first.city, first.postal_code, first.is_default) == ("Buffalo", "14201", False)


def test_unticking_default_on_the_only_default_keeps_it(signed_in, customer):
    only = AddressFactory(user=customer, is_default=True)
    signed_in.post(reverse("accounts:address_edit", args=[only.pk]), VALID)
    only.refresh_from_db()
    assert only.is_default


def test_deleting_the_default_promotes_the_oldest_remaining(signed_in, customer):
    default = AddressFactory(user=customer, is_default=True)
    older = AddressFactory(user=customer, line1="5 Older Lane")
    AddressFactory(user=customer, line1="6 Newer Lane")
    confirm = signed_in.get(reverse("accounts:address_delete", args=[default.pk]))
    assert confirm.status_code == 200 and "Delete this address?" in confirm.content.decode()
    signed_in.post(reverse("accounts:address_delete", args=[default.pk]))
    assert not Address.objects.filter(pk=default.pk).exists()
    older.refresh_from_db()
    assert older.is_default
    assert default_address_for(customer)["line1"] == "5 Older Lane"


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("postal_code", "1220", "5-digit ZIP"),
        ("postal_code", "ABCDE", "5-digit ZIP"),
        ("state", "ZZ", "Select a valid choice"),
        ("state", "New York", "Select a valid choice"),
        ("full_name", "", "This field is required"),
        ("line1", "", "This field is required"),
        ("city", "", "This field is required"),
    ],
)
def test_bad_addresses_get_a_form_error_and_nothing_is_saved(
    signed_in, customer, field, value, message
):
    response = signed_in.post(reverse("accounts:address_add"), {**VALID, field: value})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Address.objects.filter(user=customer).exists()


def test_a_state_the_pharmacy_cannot_ship_to_is_flagged(signed_in, customer, settings):
    settings.PHARMACY_LICENSED_STATES = ["NY"]
    AddressFactory(user=customer, state="AK", postal_code="99501", is_default=True)
    page = signed_in.get(reverse("accounts:dashboard")).content.decode()
    assert "not licensed to ship medicines to Alaska" in page


def test_default_address_for_anonymous_or_addressless_users_is_none(customer):
    assert default_address_for(AnonymousUser()) is None
    assert default_address_for(customer) is None


@pytest.mark.parametrize(
    "state, postal_code, message",
    [
        ("NY", "99501", "The ZIP code 99501 is in Alaska, not New York."),
        ("NJ", "10001", "The ZIP code 10001 is in New York, not New Jersey."),
    ],
)
def test_a_zip_outside_the_state_is_refused(signed_in, customer, state, postal_code, message):
    response = signed_in.post(
        reverse("accounts:address_add"), {**VALID, "state": state, "postal_code": postal_code}
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Address.objects.filter(user=customer).exists()


@pytest.mark.parametrize(
    "target",
    [
        "id",
        "dashboard",
        "../x",
        "//evil.com/",
        "https://evil.com/",
        "/no-such-page/",
        "/\\evil.com",
    ],
)
def test_after_saving_a_bare_word_or_foreign_next_falls_back_to_the_account_page(
    signed_in, customer, target
):
    response = signed_in.post(
        reverse("accounts:address_add") + "?" + urlencode({"next": target}), VALID
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:dashboard") + "#addresses"
    assert Address.objects.filter(user=customer).count() == 1  # saved, then sent somewhere safe


def test_after_saving_a_next_page_of_this_site_is_followed(signed_in, customer):
    response = signed_in.post(reverse("accounts:address_add"), {**VALID, "next": "/checkout/"})
    assert response["Location"] == "/checkout/"
