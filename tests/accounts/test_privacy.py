"""Downloading one's data and closing the account."""

import json

import pytest
from django.urls import reverse

from accounts.models import Address, PatientProfile, User
from cart.models import Cart

from .conftest import PASSWORD, AddressFactory, PatientProfileFactory, make_order

pytestmark = pytest.mark.django_db


def test_data_export_contains_profile_addresses_and_orders(signed_in, customer, other_customer):
    PatientProfileFactory(user=customer)
    AddressFactory(user=customer, is_default=True, line1="12 Elm Street")
    AddressFactory(user=other_customer, line1="77 Somebody Else Road")
    order = make_order(user=customer, email=customer.email, total="42.50")
    make_order(user=other_customer, email=other_customer.email)

    response = signed_in.get(reverse("accounts:data_export"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert "attachment" in response["Content-Disposition"]
    assert "no-cache" in response["Cache-Control"] or "no-store" in response["Cache-Control"]
    data = json.loads(response.content)
    assert data["account"]["email"] == customer.email
    assert data["patient_profile"]["allergies"] == "Penicillin (rash)"
    assert data["patient_profile"]["prescriber_licence"] == "1234567893"
    assert [a["line1"] for a in data["addresses"]] == ["12 Elm Street"]
    assert data["addresses"][0]["is_default"] is True
    assert len(data["orders"]) == 1
    assert data["orders"][0]["number"] == order.number
    assert data["orders"][0]["total"] == "42.50"
    assert data["orders"][0]["status"] == "Awaiting pharmacist review"
    assert data["record_retention_years"] == 10
    assert "Somebody Else" not in response.content.decode()


def test_data_export_without_profile_or_orders(signed_in):
    data = json.loads(signed_in.get(reverse("accounts:data_export")).content)
    assert data["patient_profile"] is None
    assert data["addresses"] == [] and data["orders"] == []


def test_close_account_needs_the_password_and_the_confirmation(signed_in, customer):
    page = signed_in.get(reverse("accounts:close_account"))
    assert "kept for 10 years" in page.content.decode()
    wrong = signed_in.post(reverse("accounts:close_account"), {"password": "nope", "confirm": "on"})
    assert wrong.status_code == 200
    assert "That password is not right" in wrong.content.decode()
    unconfirmed = signed_in.post(reverse("accounts:close_account"), {"password": PASSWORD})
    assert unconfirmed.status_code == 200
    customer.refresh_from_db()
    assert customer.is_active and customer.closed_at is None


def test_close_account_removes_personal_details_and_keeps_orders(signed_in, customer, baclofen):
    email = customer.email
    PatientProfileFactory(user=customer)
    AddressFactory(user=customer, is_default=True)
    AddressFactory(user=customer)
    Cart.objects.create(user=customer)
    order = make_order(user=customer, email=email)

    response = signed_in.post(
        reverse("accounts:close_account"), {"password": PASSWORD, "confirm": "on"}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("catalog:home")

    user = User.objects.get(pk=customer.pk)
    assert not user.is_active
    assert user.closed_at is not None
    assert user.email != email and user.email.endswith("@closed.invalid")
    assert (user.first_name, user.last_name) == ("", "")
    assert not user.has_usable_password()
    assert not Address.objects.filter(user=user).exists()
    assert not PatientProfile.objects.filter(user=user).exists()
    assert not Cart.objects.filter(user=user).exists()

    # The pharmacy record stays, with its own snapshot.
    order.refresh_from_db()
    assert order.user_id == user.pk
    assert order.email == email
    assert order.ship_line1 == "12 Elm Street"

    # Signed out, and the old credentials no longer work.
    assert signed_in.get(reverse("accounts:dashboard")).status_code == 302
    login = signed_in.post(reverse("accounts:login"), {"username": email, "password": PASSWORD})
    assert login.status_code == 200
    # The email address is free to sign up again.
    again = signed_in.post(
        reverse("accounts:signup"),
        {
            "email": email,
            "password1": "Plum-orchard-1987-lantern",
            "password2": "Plum-orchard-1987-lantern",
        },
    )
    assert again.status_code == 302


def test_closing_signs_out_every_other_session(client, customer):
    from django.test import Client

    other_device = Client()
    other_device.force_login(customer)
    client.force_login(customer)
    client.post(reverse("accounts:close_account"), {"password": PASSWORD, "confirm": "on"})
    assert other_device.get(reverse("accounts:dashboard")).status_code == 302


def test_closed_account_gets_no_password_reset_email(client, customer, mailoutbox):
    from accounts.services import account_close

    email = customer.email
    account_close(user=customer)
    client.post(reverse("accounts:password_reset"), {"email": email})
    assert mailoutbox == []
