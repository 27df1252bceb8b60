"""The current sign-in code of a demo staff account (local demo only, DEBUG on).

The demo staff's TOTP secrets are fixed and printed by ``setup_demo_staff``; this saves looking
for an authenticator app while trying the demo:

    .venv/bin/python manage.py demo_totp_code pharmacist@pharmacy.example
"""

import time

from allauth.mfa import app_settings
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from .setup_demo_staff import DEMO_TOTP_SECRETS


class Command(BaseCommand):
    help = "Print the current TOTP code of a demo staff account (DEBUG only)."

    def add_arguments(self, parser):
        parser.add_argument("email", choices=sorted(DEMO_TOTP_SECRETS))

    def handle(self, *args, email: str, **options):
        if not settings.DEBUG:
            raise CommandError("Demo codes are for the local demo only (DEBUG is off).")
        counter = int(time.time()) // app_settings.TOTP_PERIOD
        self.stdout.write(format_hotp_value(hotp_value(DEMO_TOTP_SECRETS[email], counter)))
