"""The current sign-in code of a demo staff account (local demo only, DEBUG on).

The demo staff's TOTP secrets are fixed and printed by ``setup_demo_staff``; this saves looking
for an authenticator app while trying the demo:

    .venv/bin/python manage.py demo_totp_code pharmacist@pharmacy.example
"""

import base64
import hmac
import struct
import time

from allauth.mfa import app_settings
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from .setup_demo_staff import DEMO_TOTP_SECRETS


def totp_code(secret: str, *, at: float, period: int, digits: int) -> str:
    """The code an authenticator app shows at ``at`` (RFC 6238 over RFC 4226's HOTP, SHA-1).

    Written from the RFCs with the standard library: allauth's own function is internal.
    """
    key = base64.b32decode(secret, casefold=True)
    digest = hmac.digest(key, struct.pack(">Q", int(at) // period), "sha1")
    offset = digest[-1] & 0x0F
    value = int.from_bytes(digest[offset : offset + 4], "big") & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


class Command(BaseCommand):
    help = "Print the current TOTP code of a demo staff account (DEBUG only)."

    def add_arguments(self, parser):
        parser.add_argument("email", choices=sorted(DEMO_TOTP_SECRETS))

    def handle(self, *args, email: str, **options):
        if not settings.DEBUG:
            raise CommandError("Demo codes are for the local demo only (DEBUG is off).")
        code = totp_code(
            DEMO_TOTP_SECRETS[email],
            at=time.time(),
            period=app_settings.TOTP_PERIOD,
            digits=app_settings.TOTP_DIGITS,
        )
        self.stdout.write(code)
