"""Give the "pharmacist" group what prescription review needs. Idempotent; only adds.

Called by ``setup_demo_staff``; run it alone on a shop whose groups are managed by hand.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from orders.prescriptions import PHARMACIST_GROUP

PHARMACIST_ORDER_PERMISSIONS = [
    "orders.view_order",
    "orders.change_order",
    "orders.view_orderline",
    "orders.view_orderevent",
    "orders.view_prescription",
    "orders.view_patientdetails",
    "orders.view_prescriptionreview",
    "orders.view_shipment",
    "orders.review_prescription",
    # Each decision has its own permission, checked by the service that makes it. Approving
    # captures the card hold and refusing cancels it, so those two come with the role;
    # refunds do not (a superuser or a group given orders.refund_order).
    "orders.approve_prescription",
    "orders.reject_prescription",
    "orders.request_prescription_information",
    "orders.capture_payment",
    "orders.cancel_order",
    "orders.mark_shipped",
    # Continuing care (issue 25, the prescriptions app): named here as data, no import upwards.
    "prescriptions.manage_transfer",
    "prescriptions.manage_renewal",
]


def grant_pharmacist_permissions() -> Group:
    group, _ = Group.objects.get_or_create(name=PHARMACIST_GROUP)
    wanted = {tuple(name.split(".", 1)) for name in PHARMACIST_ORDER_PERMISSIONS}
    found = [
        p
        for p in Permission.objects.filter(
            content_type__app_label__in={app for app, _ in wanted},
            codename__in={code for _, code in wanted},
        ).select_related("content_type")
        if (p.content_type.app_label, p.codename) in wanted
    ]
    missing = wanted - {(p.content_type.app_label, p.codename) for p in found}
    if missing:
        raise CommandError(f"Permissions missing (run migrate first): {sorted(missing)}")
    group.permissions.add(*found)
    return group


class Command(BaseCommand):
    help = "Give the pharmacist group the order and prescription review permissions."

    @transaction.atomic
    def handle(self, *args, **options):
        grant_pharmacist_permissions()
        self.stdout.write(
            f"Group “{PHARMACIST_GROUP}” can view orders and prescriptions and review them."
        )
