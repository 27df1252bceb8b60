"""The staff groups of a real shop, without any demo user: "pricing" and "pharmacist".

Idempotent and additive (permissions given to a group by hand are kept). Run by deploy/release.sh on
every release; then put each staff member in a group in /admin/ (Users → groups, "Staff status").
"""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

from .setup_demo_staff import GROUPS, _permissions


class Command(BaseCommand):
    help = "Create the pricing and pharmacist groups with their permissions (no users)."

    @transaction.atomic
    def handle(self, *args, **options):
        for name, permission_names in GROUPS.items():
            group, created = Group.objects.get_or_create(name=name)
            group.permissions.add(*_permissions(permission_names))
            self.stdout.write(f"Group “{name}” {'created' if created else 'updated'}.")
        # Orders and prescription review: the orders app's permissions for the pharmacist group.
        call_command("setup_pharmacist_permissions", stdout=self.stdout)
