"""A TOTP code is accepted once, remembered in the database: also while Redis is down (issue 22)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from accounts.auth_forms import CODE_ALREADY_USED
from accounts.models import UsedTotpCode
from accounts.totp_codes import totp_code_use, totp_code_window
from tests.accounts.mfa import totp_code, totp_secret
from tests.factories import UserFactory
from tests.ops.conftest import CLOSED_PORT_REDIS
from tests.ops.test_redis_down import redis_settings
from tests.orders.test_concurrency import run_together

from .conftest import PASSWORD


def sign_in_with_code(user, code: str):
    """Password, then the code step, in a new browser session."""
    client = Client()
    assert client.post(reverse("accounts:login"), {"login": user.email, "password": PASSWORD})[
        "Location"
    ] == reverse("mfa_authenticate")
    return client, client.post(reverse("mfa_authenticate"), {"code": code})


def signed_in(client) -> bool:
    return client.get(reverse("accounts:dashboard")).status_code == 200


@pytest.mark.django_db
def test_a_code_signs_in_once_even_while_redis_is_down():
    pharmacist = UserFactory(email="rx@pharmacy.example", is_staff=True)
    secret = totp_secret(pharmacist)
    code = totp_code(secret)
    with override_settings(**redis_settings(CLOSED_PORT_REDIS)):
        first, response = sign_in_with_code(pharmacist, code)
        assert response.status_code == 302 and signed_in(first)
        # Pressed again at once: refused, saying why (not "Incorrect code").
        again, response = sign_in_with_code(pharmacist, code)
        assert response.status_code == 200 and CODE_ALREADY_USED in response.content.decode()
        assert "Incorrect code" not in response.content.decode() and not signed_in(again)
    # New cache objects, so an empty stand-in memory: what another web process (or this one
    # after a restart) has while Redis is unreachable. allauth's cache alone accepted the code here.
    with override_settings(**redis_settings(CLOSED_PORT_REDIS)):
        again, response = sign_in_with_code(pharmacist, code)
        assert response.status_code == 200 and CODE_ALREADY_USED in response.content.decode()
        assert not signed_in(again)
        # The same code typed with a space is the same code.
        again, response = sign_in_with_code(pharmacist, f"{code[:3]} {code[3:]}")
        assert response.status_code == 200 and not signed_in(again)
        # The next code the app shows works (one step ahead is within allauth's tolerance).
        later, response = sign_in_with_code(
            pharmacist, totp_code(secret, at=timezone.now().timestamp() + 30)
        )
        assert response.status_code == 302 and signed_in(later)


@pytest.mark.django_db
def test_a_used_code_is_forgotten_only_after_the_window_it_could_be_accepted_in():
    user = UserFactory(is_staff=True)
    window = totp_code_window()
    assert window == timedelta(seconds=90)  # 30 s steps, one step either side (MFA_TOTP_TOLERANCE)
    assert totp_code_use(user=user, code="123456") is True
    assert totp_code_use(user=user, code="123-456") is False
    assert totp_code_use(user=UserFactory(), code="123456") is True  # per person
    UsedTotpCode.objects.filter(user=user).update(
        used_at=timezone.now() - window + timedelta(seconds=1)
    )
    assert totp_code_use(user=user, code="123456") is False  # still inside the window
    UsedTotpCode.objects.filter(user=user).update(
        used_at=timezone.now() - window - timedelta(seconds=1)
    )
    assert totp_code_use(user=user, code="123456") is True  # pruned, so the table stays small
    assert UsedTotpCode.objects.filter(user=user).count() == 1


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL's unique index under concurrency"
)
def test_the_same_code_at_the_same_moment_is_accepted_once(transactional_db):
    user = UserFactory(is_staff=True)
    results = run_together(lambda: totp_code_use(user=user, code="654321"), [(), (), ()])
    assert sorted(results) == [False, False, True]
