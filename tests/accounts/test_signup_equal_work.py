"""Sign-up does the same work for an address that has an account as for a new one (issue 22).

Measured, allauth's form answered a taken address in a tenth of the time of a new one (no
password hash): the time told whether someone is a customer. The figures are in
``bench/signup_timing.py``; here, that both paths take the same steps: one hash of the typed
password with the same hasher, one email of the same kind queued to the address.
"""

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher
from django.test import Client
from django.urls import reverse

from accounts.models import User
from notifications.models import EmailKind

from .conftest import emails_to

pytestmark = pytest.mark.django_db
TYPED = "Plum-orchard-1987-lantern"


class CountingHasher(MD5PasswordHasher):
    """A real hasher that also notes each password it hashes."""

    hashed: list[str] = []

    def encode(self, password, salt):
        CountingHasher.hashed.append(password)
        return super().encode(password, salt)


def steps_of_sign_up(email: str, address: str) -> tuple[list[str], list[str]]:
    """(passwords hashed, kinds of email queued to ``email``) while signing up with ``email``."""
    CountingHasher.hashed.clear()
    response = Client(REMOTE_ADDR=address).post(
        reverse("accounts:signup"), {"email": email, "password1": TYPED, "password2": TYPED}
    )
    assert response.status_code == 302 and response["Location"] == reverse(
        "account_email_verification_sent"
    )
    return list(CountingHasher.hashed), [row.kind for row in emails_to(email)]


def test_a_taken_and_a_new_address_take_the_same_steps(settings, customer):
    settings.PASSWORD_HASHERS = ["tests.accounts.test_signup_equal_work.CountingHasher"]
    new = steps_of_sign_up("first.time@example.com", "203.0.113.7")
    taken = steps_of_sign_up(customer.email.upper(), "203.0.113.8")
    assert new == taken == ([TYPED], [EmailKind.ACCOUNT_VERIFICATION])
    # The taken address still has one account, with its own password; the new one has its account.
    assert User.objects.filter(email__iexact=customer.email).count() == 1
    assert User.objects.get(email="first.time@example.com").check_password(TYPED)
