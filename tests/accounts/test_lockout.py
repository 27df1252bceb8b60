"""Failed sign-ins lock the (account, client address) pair, never an address for everyone.

The rule of the hardening issue, on allauth's rate limits (``accounts.adapter``): five failures
lock that account *from that address* for 30 minutes; an address failing for many accounts is
slowed down for a minute; the owner signs in from elsewhere, or resets the password to unlock.
The client address comes from X-Forwarded-For only behind a trusted proxy (BEHIND_PROXY).
"""

import uuid

import pytest
from django.conf import settings
from django.urls import reverse

from tests.accounts.mfa import totp_secret, unused_totp_code
from tests.factories import UserFactory

from .conftest import PASSWORD, emailed_link, emails_to

pytestmark = pytest.mark.django_db
STRONG = "Plum-orchard-1987-lantern"
A, B = "203.0.113.10", "198.51.100.7"


def _login(client, email, password, ip, **headers):
    return client.post(
        reverse("accounts:login"), {"login": email, "password": password}, REMOTE_ADDR=ip, **headers
    )


USED_CODES: set[str] = set()


def _signs_in(client, user, ip, **headers) -> bool:
    """A full sign-in from ``ip``: the password, then (staff) the code from the authenticator."""
    client.post(reverse("accounts:logout"))
    response = _login(client, user.email, PASSWORD, ip, **headers)
    if response.status_code == 302 and response["Location"] == reverse("mfa_authenticate"):
        code = unused_totp_code(totp_secret(user), USED_CODES)
        response = client.post(
            reverse("mfa_authenticate"), {"code": code}, REMOTE_ADDR=ip, **headers
        )
    return (
        response.status_code == 302 and client.get(reverse("accounts:dashboard")).status_code == 200
    )


@pytest.fixture
def pharmacist(db):
    USED_CODES.clear()
    user = UserFactory(email="pharmacist@pharmacy.example", is_staff=True)
    totp_secret(user)
    return user


def test_the_lock_is_five_failures_for_thirty_minutes():
    assert settings.LOGIN_FAILURES_PER_ACCOUNT_AND_ADDRESS == 5
    assert settings.LOGIN_LOCK_MINUTES == 30


def test_failures_for_random_emails_from_one_address_lock_nobody_out(client, pharmacist, customer):
    for _ in range(6):
        response = _login(client, f"guess-{uuid.uuid4().hex[:8]}@example.com", "wrong", A)
        assert "do not match an account" in response.content.decode()
    assert _signs_in(client, pharmacist, A)
    assert _signs_in(client, customer, A)
    assert _signs_in(client, pharmacist, B)
    assert _signs_in(client, customer, B)


def test_failures_for_the_pharmacists_email_lock_only_that_pair_and_a_reset_unlocks_it(
    client, pharmacist, customer
):
    for _ in range(5):
        assert (
            "do not match an account"
            in _login(client, pharmacist.email, "wrong", A).content.decode()
        )
    sixth = _login(client, pharmacist.email.upper(), "wrong", A)
    body = sixth.content.decode()
    assert "Sign-in is paused for your security" in body and "30 minutes" in body
    # Even the right password is refused from A while the pair is locked...
    right = _login(client, pharmacist.email, PASSWORD, A)
    assert "Sign-in is paused" in right.content.decode()
    assert client.get(reverse("accounts:dashboard")).status_code == 302
    # ...but not from B, nor for anyone else at A.
    assert _signs_in(client, pharmacist, B)
    assert _signs_in(client, customer, A)

    # The owner resets the password: the lock (counted against the old one) is gone.
    client.post(reverse("accounts:logout"))
    client.post(reverse("accounts:password_reset"), {"email": pharmacist.email}, REMOTE_ADDR=A)
    (reset,) = emails_to(pharmacist.email, kind="account_password_reset")
    set_url = client.get(emailed_link(reset), follow=True).redirect_chain[-1][0]
    client.post(set_url, {"password1": STRONG, "password2": STRONG})
    response = _login(client, pharmacist.email, STRONG, A)
    assert response.status_code == 302 and response["Location"] == reverse("mfa_authenticate")


def test_an_address_trying_many_accounts_is_slowed_down_with_a_clear_message(client, customer):
    for _ in range(settings.LOGIN_FAILURES_PER_ADDRESS_PER_MINUTE):
        _login(client, f"guess-{uuid.uuid4().hex[:8]}@example.com", "wrong", A)
    throttled = _login(client, f"guess-{uuid.uuid4().hex[:8]}@example.com", "wrong", A)
    assert "Please wait a minute and try again" in throttled.content.decode()
    # Nobody is locked out anywhere else; the throttle is a minute long, not a lock.
    assert _signs_in(client, customer, B)


def test_the_forwarded_address_counts_only_behind_a_trusted_proxy(client, settings, customer):
    proxy = "10.0.0.2"
    # Without a trusted proxy, a client cannot escape its lock by inventing X-Forwarded-For.
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 0
    for attempt in range(6):
        _login(client, customer.email, "wrong", A, HTTP_X_FORWARDED_FOR=f"192.0.2.{attempt}")
    assert not _signs_in(client, customer, A, HTTP_X_FORWARDED_FOR="192.0.2.99")

    # Behind the load balancer everyone arrives from the proxy: the forwarded address decides.
    other = UserFactory()
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1
    for _ in range(6):
        _login(client, other.email, "wrong", proxy, HTTP_X_FORWARDED_FOR=A)
    assert not _signs_in(client, other, proxy, HTTP_X_FORWARDED_FOR=A)
    assert _signs_in(client, other, proxy, HTTP_X_FORWARDED_FOR=B)
