"""Each TOTP code signs in once, remembered in the database (not only in allauth's cache).

``totp_code_use`` is called by the shop's second-factor forms (``accounts.auth_forms``) after
allauth has found the code valid. The code is recognised the way allauth recognises it for its
own cache marker (spaces, dashes and other punctuation do not make a new code), and it is
kept for the whole time allauth would accept it: ``TOTP_PERIOD`` seconds for each step of the
tolerance either side of now.
"""

from __future__ import annotations

import string
from datetime import timedelta

from allauth.mfa import app_settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from .models import UsedTotpCode, User


def totp_code_window() -> timedelta:
    """How long after its first use a code could still be accepted."""
    return timedelta(seconds=app_settings.TOTP_PERIOD * (2 * app_settings.TOTP_TOLERANCE + 1))


_NOT_PART_OF_A_CODE = str.maketrans("", "", string.punctuation + string.whitespace)


def _digest(user: User, code: str) -> str:
    typed = code.translate(_NOT_PART_OF_A_CODE).lower()
    return salted_hmac("accounts.totp_codes", f"{user.pk}:{typed}", algorithm="sha256").hexdigest()


def totp_code_was_used(*, user: User, code: str) -> bool:
    """True if ``code`` was accepted for ``user`` within its window (to say so, not "incorrect")."""
    since = timezone.now() - totp_code_window()
    return UsedTotpCode.objects.filter(
        user=user, code_digest=_digest(user, code), used_at__gte=since
    ).exists()


def totp_code_use(*, user: User, code: str) -> bool:
    """Record ``code`` as used by ``user``; False if it was already used within its window.

    The unique constraint decides, so two requests with the same code at the same moment (two
    web processes, Redis down or not) get one True and one False.
    """
    now = timezone.now()
    UsedTotpCode.objects.filter(used_at__lt=now - totp_code_window()).delete()
    try:
        with transaction.atomic():
            UsedTotpCode.objects.create(user=user, code_digest=_digest(user, code), used_at=now)
    except IntegrityError:
        return False
    return True
