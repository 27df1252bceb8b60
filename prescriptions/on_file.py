"""The customer's prescriptions on file: their list, and moving them into an account."""

from __future__ import annotations

from datetime import date

from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from orders.models import Order

from .models import PrescriptionOnFile, PrescriptionOnFileEvent
from .refill_rules import RefillError

Event = PrescriptionOnFileEvent.Kind

Event = PrescriptionOnFileEvent.Kind


# --- The customer: my prescriptions, refill to cart --------------------------------------------


def prescriptions_for_user(user) -> QuerySet:
    """The customer's prescriptions on file with their fills (two queries in all)."""
    fills = (
        PrescriptionOnFileEvent.objects.filter(kind=Event.FILL)
        .select_related("order")
        .order_by("-created_at")
    )
    return (
        PrescriptionOnFile.objects.filter(user=user)
        .prefetch_related(Prefetch("events", queryset=fills, to_attr="fills"))
        .order_by("medicine", "-created_at")
    )


def records_of_order_to_account(*, order: Order, user) -> int:
    """The prescriptions on file first filled by ``order``, recorded while it was a guest order,
    now belong to ``user``'s account (it has just been claimed; call inside that transaction).

    Each move is in the record's history. Returns how many moved."""
    moved = 0
    for record in PrescriptionOnFile.objects.select_for_update().filter(
        source_order=order, user__isnull=True
    ):
        record.user = user
        record.save(update_fields=["user", "updated_at"])
        PrescriptionOnFileEvent.objects.create(
            prescription=record,
            kind=Event.CHANGED,
            order=order,
            by=user,
            note=f"Order {order.number} was added to the customer's account; the prescription on file with it.",
            changes={"before": {"account": None}, "after": {"account": user.pk}},
        )
        moved += 1
    return moved


def own_record(*, user, record_id) -> PrescriptionOnFile:
    if user is None or not user.is_authenticated:
        raise RefillError("Please sign in: prescriptions on file belong to an account.")
    try:
        record = (
            PrescriptionOnFile.objects.select_related("dosage")
            .filter(pk=int(record_id), user=user)
            .first()
        )
    except (TypeError, ValueError):
        record = None
    if record is None:
        raise RefillError("No such prescription on file.")
    return record


def active_records_for_patient(
    record: PrescriptionOnFile, *, today: date | None = None
) -> QuerySet:
    today = today or timezone.localdate()
    return PrescriptionOnFile.objects.filter(
        user_id=record.user_id,
        patient_name__iexact=record.patient_name,
        patient_date_of_birth=record.patient_date_of_birth,
        expires_on__gte=today,
    )
