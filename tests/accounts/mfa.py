"""Staff second factor in tests: a real TOTP authenticator, and sessions that passed it.

- ``staff_login(client, user)``: sign a staff member in on the Django test client *with* the
  second factor: the user gets a TOTP authenticator (``totp_secret``), the session is logged in
  and carries the authentication records allauth writes after a correct TOTP code (the records
  ``accounts.middleware`` checks). Use it for any staff test that is not about signing in.
- ``password_only_login(client, user)``: Django's plain ``force_login``: a session without the
  second factor (what the middleware must turn away from staff pages).
- ``totp_code(secret)``: the code an authenticator app shows now, computed with allauth's own
  TOTP functions (the browser test types it into the sign-in page).

``tests/conftest.py`` makes ``Client.force_login`` call ``staff_login`` for staff users, so the
tests written before the second factor existed keep signing staff in as they did.
"""

from __future__ import annotations

import time

from allauth.account.internal.flows.login import (
    _AUTHENTICATION_METHODS_USER_SESSION_KEY,
    AUTHENTICATION_METHODS_SESSION_KEY,
)
from allauth.account.internal.userkit import user_id_to_str
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value
from allauth.mfa.utils import decrypt
from django.test import Client

_force_login = Client.force_login  # Django's own, captured before tests/conftest.py wraps it


def totp_secret(user) -> str:
    """The user's TOTP secret, creating the authenticator (as "Turn on" does) if there is none."""
    authenticator = Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).first()
    if authenticator is None:
        secret = generate_totp_secret()
        TOTP.activate(user, secret)
        return secret
    return decrypt(authenticator.data["secret"])


def totp_code(secret: str, *, at: float | None = None) -> str:
    from allauth.mfa import app_settings

    return format_hotp_value(
        hotp_value(secret, int(at if at is not None else time.time()) // app_settings.TOTP_PERIOD)
    )


def unused_totp_code(secret: str, used: set[str]) -> str:
    """A code valid now that is not in ``used`` (allauth accepts each code once; with a tolerance
    of one period either side, the next period's code is valid too). Adds it to ``used``."""
    now = time.time()
    for at in (now, now + 30, now - 30):
        code = totp_code(secret, at=at)
        if code not in used:
            used.add(code)
            return code
    raise AssertionError("no unused code in the tolerance window")


def password_only_login(client: Client, user) -> None:
    _force_login(client, user)


def mark_second_factor(client: Client, user) -> None:
    """Write the records allauth keeps after a password and a correct TOTP code (flows.login)."""
    totp_secret(user)
    authenticator = Authenticator.objects.get(user=user, type=Authenticator.Type.TOTP)
    session = client.session
    now = time.time()
    session[AUTHENTICATION_METHODS_SESSION_KEY] = [
        {"method": "password", "at": now, "email": user.email},
        {"method": "mfa", "at": now, "id": authenticator.pk, "type": authenticator.type},
    ]
    session[_AUTHENTICATION_METHODS_USER_SESSION_KEY] = user_id_to_str(user)
    session.save()


def staff_login(client: Client, user) -> None:
    _force_login(client, user)
    mark_second_factor(client, user)
