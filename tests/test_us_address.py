"""One ZIP rule and one list of states (django-localflavor) for checkout and saved addresses."""

import pytest

from accounts.forms import AddressForm
from checkout.forms import CheckoutForm

pytestmark = pytest.mark.django_db

ADDRESS = {"full_name": "Alex Morgan", "line1": "1 Main St", "city": "Albany", "state": "NY"}
CHECKOUT = {
    "email": "alex@example.com",
    "name": "Alex Morgan",
    "line1": "1 Main St",
    "city": "Albany",
    "state": "NY",
    "shipping_method": "standard",
}


@pytest.mark.parametrize(
    "typed, stored",
    [
        ("12207", "12207"),
        ("12207-1234", "12207-1234"),
        ("122071234", "12207-1234"),
        (" 12207 ", "12207"),
    ],
)
def test_checkout_and_address_book_accept_and_store_the_same_zip(typed, stored):
    address = AddressForm(data={**ADDRESS, "postal_code": typed})
    checkout = CheckoutForm(data={**CHECKOUT, "zip_code": typed})
    assert address.is_valid(), address.errors
    assert checkout.is_valid(), checkout.errors
    assert address.cleaned_data["postal_code"] == checkout.cleaned_data["zip_code"] == stored


@pytest.mark.parametrize("typed", ["1220", "ABCDE", "12207-12", "1220712345"])
def test_checkout_and_address_book_refuse_the_same_zip(typed):
    address = AddressForm(data={**ADDRESS, "postal_code": typed})
    checkout = CheckoutForm(data={**CHECKOUT, "zip_code": typed})
    assert not address.is_valid() and not checkout.is_valid()
    assert address.errors["postal_code"] == checkout.errors["zip_code"]


def test_states_come_from_localflavor_in_both_forms():
    address_states = [code for code, _ in AddressForm().fields["state"].choices if code]
    checkout_states = [code for code, _ in CheckoutForm().fields["state"].choices if code]
    assert address_states == checkout_states
    assert len(address_states) == 51 and "DC" in address_states and "PR" not in address_states
