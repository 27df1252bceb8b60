"""Give the "pharmacist" group what prescription review needs. Idempotent; only adds.

Called by ``setup_demo_staff``; run it alone on a shop whose groups are managed by hand.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Q

from prescriptions.queue import PHARMACIST_GROUP

PHARMACIST_PERMISSIONS = [
    "orders.view_order",
    "orders.change_order",
    "orders.view_orderline",
    "orders.view_orderevent",
    "prescriptions.view_prescription",
    "prescriptions.view_patientdetails",
    "prescriptions.view_prescriptionreview",
    "orders.view_shipment",
    "prescriptions.review_prescription",
    # Each decision has its own permission, checked by the service that makes it. Approving
    # captures the card hold and refusing cancels it, so those two come with the role;
    # refunds do not (a superuser or a group given orders.refund_order).
    "prescriptions.approve_prescription",
    "prescriptions.reject_prescription",
    "prescriptions.request_prescription_information",
    "orders.capture_payment",
    "orders.cancel_order",
    "orders.mark_shipped",
    # Messages with patients (issue 25): read the inbox and answer, checked in prescriptions.messages.
    "prescriptions.answer_patient_messages",
    # Transfers in and renewal requests (issue 25): each step checks its permission.
    "prescriptions.manage_transfer",
    "prescriptions.manage_renewal",
]


def grant_pharmacist_permissions() -> Group:
    group, _ = Group.objects.get_or_create(name=PHARMACIST_GROUP)
    wanted = {tuple(name.split(".", 1)) for name in PHARMACIST_PERMISSIONS}
    query = Q()
    for app_label, codename in wanted:
        query |= Q(content_type__app_label=app_label, codename=codename)
    found = list(Permission.objects.filter(query).select_related("content_type"))
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
