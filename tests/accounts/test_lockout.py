"""Failed sign-ins are rate-limited per account and per IP (django-axes, limit 5)."""
import pytest
from django.conf import settings
from django.urls import reverse

from tests.factories import UserFactory

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db


def _login(client, email, password, ip):
    return client.post(reverse("accounts:login"), {"username": email, "password": password}, REMOTE_ADDR=ip)


def test_the_limit_is_five():
    assert settings.AXES_FAILURE_LIMIT == 5


def test_sixth_bad_login_for_an_account_is_locked_out_with_a_clear_page(client, customer):
    # Attempts come from different addresses: it is the account that gets locked.
    for attempt in range(4):
        response = _login(client, customer.email, "wrong", f"10.0.0.{attempt + 1}")
        assert response.status_code == 200
        assert "do not match an account" in response.content.decode()
    fifth = _login(client, customer.email.upper(), "wrong", "10.0.0.5")
    assert fifth.status_code == 429
    sixth = _login(client, customer.email, "wrong", "10.0.0.6")
    assert sixth.status_code == 429
    body = sixth.content.decode()
    assert "Sign-in is paused for your security" in body
    assert "30 minutes" in body
    assert reverse("accounts:password_reset") in body
    # Even the right password is refused while the account is locked.
    right = _login(client, customer.email, PASSWORD, "10.0.0.7")
    assert right.status_code == 429
    assert client.get(reverse("accounts:dashboard")).status_code == 302
    # Other customers signing in from elsewhere are not affected.
    other = UserFactory()
    assert _login(client, other.email, PASSWORD, "10.0.0.8").status_code == 302


def test_bad_logins_from_one_ip_lock_that_ip_across_accounts(client):
    for attempt in range(5):
        _login(client, f"guess{attempt}@example.com", "wrong", "192.0.2.10")
    victim = UserFactory()
    locked = _login(client, victim.email, PASSWORD, "192.0.2.10")
    assert locked.status_code == 429
    assert "Sign-in is paused" in locked.content.decode()
    # The same account from another network still works.
    assert _login(client, victim.email, PASSWORD, "198.51.100.7").status_code == 302
