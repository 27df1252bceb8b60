"""Groups for staff, and demo staff accounts for a local shop.

Idempotent: run it as often as you like; groups get exactly the permissions listed here and
the demo users get the passwords printed. Demo users are refused on a production
configuration (DEBUG off) unless ``--force`` is given.
"""

from __future__ import annotations

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

DEMO_PASSWORD = "demo-pharmacy-staff-2024"
# Staff pages need a second factor (accounts.middleware). The demo staff get these fixed TOTP
# secrets so the demo stays usable: add one to any authenticator app, or compute the code with
# ``oathtool --totp -b <secret>``. Known secrets, like the passwords: local use only.
DEMO_TOTP_SECRETS = {
    "admin@pharmacy.example": "OJUXMZLSONUWIZJNMFSG22LOFVSGK3LP",
    "pricing@pharmacy.example": "OJUXMZLSONUWIZJNOBZGSY3JNZTS2ZDF",
    "pharmacist@pharmacy.example": "OJUXMZLSONUWIZJNOBUGC4TNMFRWS43U",
}

CATALOG_MODELS = (
    "category",
    "product",
    "dosage",
    "packagetier",
    "infosection",
    "dosingguideline",
    "safetynote",
    "faq",
)

# Pricing staff: see and change the catalog (incl. tiers and dosages; change_packagetier is
# also what the tier import needs). Deliberately nothing from orders.
PRICING_PERMISSIONS = [
    f"catalog.{action}_{model}" for model in CATALOG_MODELS for action in ("view", "change")
]
# Pharmacists read the catalog and the email outbox and may resend a customer's email; order
# and prescription permissions are added by the prescriptions app (setup_pharmacist_permissions).
PHARMACIST_PERMISSIONS = [f"catalog.view_{model}" for model in CATALOG_MODELS] + [
    "notifications.view_outboundemail",
    "notifications.resend_email",
]

GROUPS = {"pricing": PRICING_PERMISSIONS, "pharmacist": PHARMACIST_PERMISSIONS}


def _permissions(names: list[str]) -> list[Permission]:
    wanted = {tuple(name.split(".", 1)) for name in names}
    # Permissions are normally created after migrate; make sure, e.g. after a database flush.
    for app_label in {app for app, _ in wanted}:
        create_permissions(apps.get_app_config(app_label), verbosity=0)
    found = list(
        Permission.objects.filter(
            content_type__app_label__in={app for app, _ in wanted},
            codename__in={code for _, code in wanted},
        ).select_related("content_type")
    )
    found = [p for p in found if (p.content_type.app_label, p.codename) in wanted]
    missing = wanted - {(p.content_type.app_label, p.codename) for p in found}
    if missing:
        raise CommandError(f"Permissions missing (run migrate first): {sorted(missing)}")
    return found


class Command(BaseCommand):
    help = "Create the pricing and pharmacist groups and, for local use, demo staff users."

    def add_arguments(self, parser):
        parser.add_argument("--admin-password", default=None)
        parser.add_argument("--pricing-password", default=None)
        parser.add_argument("--pharmacist-password", default=None)
        parser.add_argument(
            "--force", action="store_true", help="Create demo users even though DEBUG is off."
        )

    def handle(self, *args, **options):
        groups = {}
        with transaction.atomic():
            for name, permission_names in GROUPS.items():
                group, created = Group.objects.get_or_create(name=name)
                # Only add: the orders app adds its own permissions to "pharmacist" and must keep them.
                group.permissions.add(*_permissions(permission_names))
                groups[name] = group
                self.stdout.write(f"Group “{name}” {'created' if created else 'updated'}.")
            # Orders and prescription review (orders app): view/change orders, review permission.
            call_command("setup_pharmacist_permissions", stdout=self.stdout)

        if not settings.DEBUG and not options["force"]:
            raise CommandError(
                "DEBUG is off, so no demo users were created (groups are set up). "
                "Demo users have known passwords; pass --force only if you really want them here."
            )

        accounts = [
            ("admin@pharmacy.example", options["admin_password"], None, True),
            ("pricing@pharmacy.example", options["pricing_password"], groups["pricing"], False),
            (
                "pharmacist@pharmacy.example",
                options["pharmacist_password"],
                groups["pharmacist"],
                False,
            ),
        ]
        lines = []
        with transaction.atomic():
            lines = self._create_users(accounts)

        self.stdout.write("")
        self.stdout.write(
            self.style.WARNING("Demo staff accounts — for local use only, never in production:")
        )
        for line in lines:
            self.stdout.write(line)
        self.stdout.write("")
        self.stdout.write(
            "Staff pages ask for a code from an authenticator app (TOTP) after the password."
        )
        self.stdout.write(
            "Add the secret to any authenticator app, or print the current code with:"
        )
        self.stdout.write(
            "  DEBUG=1 .venv/bin/python manage.py demo_totp_code pharmacist@pharmacy.example"
        )
        self.stdout.write("")

    def _create_users(self, accounts) -> list[str]:
        User = get_user_model()
        lines = []
        for email, password, group, superuser in accounts:
            password = password or DEMO_PASSWORD
            user = User.objects.filter(email__iexact=email).first() or User(email=email)
            user.is_staff = True
            user.is_superuser = superuser
            user.is_active = True
            user.set_password(password)
            user.save()
            if group is not None:
                user.groups.add(group)
            secret = self._verify_and_add_totp(user)
            lines.append(f"  {email:<30} {password:<26} TOTP secret {secret}")
        return lines

    def _verify_and_add_totp(self, user) -> str:
        """Staff sign in with a verified address and a second factor: give the demo users both."""
        from allauth.account.models import EmailAddress
        from allauth.mfa.adapter import get_adapter
        from allauth.mfa.models import Authenticator

        EmailAddress.objects.update_or_create(
            user=user, email=user.email, defaults={"verified": True, "primary": True}
        )
        secret = DEMO_TOTP_SECRETS[user.email]
        # The secret stored as allauth stores one (the MFA adapter's documented ``encrypt`` hook).
        encrypted = get_adapter().encrypt(secret)
        authenticator = Authenticator.objects.filter(
            user=user, type=Authenticator.Type.TOTP
        ).first()
        if authenticator is None:
            Authenticator.objects.create(
                user=user, type=Authenticator.Type.TOTP, data={"secret": encrypted}
            )
        else:
            authenticator.data = {**authenticator.data, "secret": encrypted}
            authenticator.save(update_fields=["data"])
        return secret
