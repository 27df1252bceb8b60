"""Every customer URL: anonymous visitors are sent to sign in, other customers get a 404."""

import pytest
from django.urls import reverse

from accounts.models import Address

from .conftest import AddressFactory

pytestmark = pytest.mark.django_db

OWN_PAGES = [
    ("get", "accounts:dashboard"),
    ("get", "accounts:address_add"),
    ("post", "accounts:address_add"),
    ("get", "accounts:patient_profile"),
    ("post", "accounts:patient_profile"),
    ("get", "accounts:data_export"),
    ("get", "accounts:close_account"),
    ("post", "accounts:close_account"),
    ("get", "accounts:password_change"),
    ("post", "accounts:password_change"),
]
ADDRESS_PAGES = [
    ("get", "accounts:address_edit"),
    ("post", "accounts:address_edit"),
    ("get", "accounts:address_delete"),
    ("post", "accounts:address_delete"),
    ("post", "accounts:address_make_default"),
]


@pytest.mark.parametrize("method, name", OWN_PAGES)
def test_anonymous_is_sent_to_sign_in(client, method, name):
    url = reverse(name)
    response = getattr(client, method)(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('accounts:login')}?next={url}"


@pytest.mark.parametrize("method, name", ADDRESS_PAGES)
def test_anonymous_is_sent_to_sign_in_for_an_address(client, customer, method, name):
    address = AddressFactory(user=customer, is_default=True)
    url = reverse(name, args=[address.pk])
    response = getattr(client, method)(url, {"full_name": "Mallory"} if method == "post" else None)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))
    address.refresh_from_db()
    assert address.full_name == "Alex Morgan"


@pytest.mark.parametrize("method, name", ADDRESS_PAGES)
def test_another_customers_address_is_a_404(client, customer, other_customer, method, name):
    address = AddressFactory(user=customer, is_default=True, line1="1 Private Lane")
    mine = AddressFactory(user=other_customer, is_default=True)
    client.force_login(other_customer)
    url = reverse(name, args=[address.pk])
    data = {
        "full_name": "Mallory",
        "line1": "x",
        "city": "y",
        "state": "NY",
        "postal_code": "10001",
    }
    response = getattr(client, method)(url, data if method == "post" else None)
    assert response.status_code == 404
    assert "1 Private Lane" not in response.content.decode()
    address.refresh_from_db()
    assert (address.full_name, address.is_default) == ("Alex Morgan", True)
    mine.refresh_from_db()
    assert mine.is_default
    assert Address.objects.count() == 2


def test_a_missing_address_is_a_404(signed_in):
    assert signed_in.get(reverse("accounts:address_edit", args=[999999])).status_code == 404


def test_own_pages_show_only_own_data(client, customer, other_customer):
    AddressFactory(user=customer, line1="1 Private Lane")
    client.force_login(other_customer)
    for name in ("accounts:dashboard", "accounts:data_export"):
        assert "1 Private Lane" not in client.get(reverse(name)).content.decode()


def test_make_default_refuses_get(signed_in, customer):
    address = AddressFactory(user=customer)
    assert (
        signed_in.get(reverse("accounts:address_make_default", args=[address.pk])).status_code
        == 405
    )
