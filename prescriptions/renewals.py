"""Renewal requests: we ask the prescriber to renew a prescription that has run out.

The rules, in one place:

* **Starting** (``renewal_request_start``): a prescription on file whose refills are used up or
  which has expired (``refill_checks(...).needs_new_prescription``) may get a renewal request,
  from the patient's one click, a pharmacist, or the shop itself (auto-refill, ``by=None``).
  Idempotent: one open request per prescription, backed by a partial unique constraint; asking
  again returns the open one. A prescription already renewed gets none: the new one is on file.
* **The pharmacist** moves it along ``care_states.RENEWAL_STEPS``: requested → sent to the
  prescriber (the prescriber page printed or faxed) → renewed or denied (with the reason the
  patient reads). Each step is permission-checked (``prescriptions.manage_renewal``), made on the
  locked row and audited.
* **Renewed** (``renewal_renew``): the prescriber's answer becomes a new prescription on file,
  linked to the old one (``RenewalRequest.renewed_prescription``), recorded with the same checks
  as any (``prescriptions.on_file_record.prescription_on_file_record``). No fill has been made from
  it, so its refills count every fill it allows: the refills written plus the first fill. The old
  record's last fill is carried over, so the too-soon check still holds for the first fill.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from pharmacy.permissions import require_permission

from .care_states import RENEWAL_NEEDS_REASON, RENEWAL_OPEN, RENEWAL_STEPS, RenewalStatus
from .care_steps import CareError, step
from .models import PrescriptionOnFile, RenewalRequest
from .on_file_record import RecordInput, prescription_on_file_record
from .refill_rules import RefillError, refill_checks, validity_days

PERMISSION = "prescriptions.manage_renewal"


@dataclass(frozen=True)
class RenewInput:
    """The prescriber's renewal, as written."""

    directions: str
    daily_dose: object
    quantity_per_fill: int
    refills_written: int
    date_written: date
    prescriber_name: str
    prescriber_licence: str
    prescriber_phone: str = ""
    expires_on: date | None = None
    note: str = ""


def renewal_needed(record: PrescriptionOnFile, *, today: date | None = None) -> bool:
    return refill_checks(record, today=today).needs_new_prescription


def renewal_request_start(*, prescription: PrescriptionOnFile, by) -> RenewalRequest:
    """Ask for a renewal of ``prescription``; returns the open request (new or existing).

    ``by`` is the patient who owns it, a member of staff holding ``prescriptions.manage_renewal``,
    or None for the shop itself (the auto-refill job when refills run out).
    """
    if by is not None and by.pk != prescription.user_id:
        require_permission(by, PERMISSION, action="ask for a renewal for a patient")
    with transaction.atomic():
        record = PrescriptionOnFile.objects.select_for_update().get(pk=prescription.pk)
        existing = RenewalRequest.objects.filter(
            prescription=record, status__in=RENEWAL_OPEN
        ).first()
        if existing is not None:
            return existing
        if RenewalRequest.objects.filter(
            prescription=record, status=RenewalStatus.RENEWED
        ).exists():
            raise CareError(
                "This prescription has been renewed already: order from the new prescription on file.",
                status=409,
            )
        if not renewal_needed(record):
            raise CareError(
                "This prescription still has refills and is valid: order a refill instead.",
                status=409,
            )
        try:
            with transaction.atomic():
                renewal = RenewalRequest.objects.create(prescription=record, requested_by=by)
        except IntegrityError:
            # Written by a path that did not lock the prescription: the constraint kept one.
            return RenewalRequest.objects.get(prescription=record, status__in=RENEWAL_OPEN)
        renewal.events.create(
            to_status=RenewalStatus.REQUESTED,
            by=by,
            note="Asked by the patient." if by is not None and by.pk == record.user_id else "",
        )
    return renewal


def _step(renewal: RenewalRequest, to: str, *, by, note: str = "", effect=None):
    return step(
        model=RenewalRequest,
        pk=renewal.pk,
        to=to,
        by=by,
        note=note,
        steps=RENEWAL_STEPS,
        needs_reason=RENEWAL_NEEDS_REASON,
        permission=PERMISSION,
        action="handle a renewal request",
        effect=effect,
    )


def renewal_mark_sent(*, renewal: RenewalRequest, by, note: str = "") -> RenewalRequest:
    """The prescriber page has been faxed, printed or sent; we wait for the prescriber."""
    return _step(renewal, RenewalStatus.SENT, by=by, note=note)


def renewal_deny(*, renewal: RenewalRequest, by, reason: str) -> RenewalRequest:
    """The prescriber declined (or wants to see the patient first); the patient reads why."""
    return _step(renewal, RenewalStatus.DENIED, by=by, note=reason)


def renew_problem(data: RenewInput, *, today: date | None = None) -> str:
    today = today or timezone.localdate()
    if data.refills_written < 0:
        return "Refills written must be zero or more."
    if data.date_written > today:
        return "The date written is in the future."
    expires = data.expires_on or data.date_written + timedelta(days=validity_days())
    if expires < today:
        return "That prescription has already expired."
    if expires > data.date_written + timedelta(days=validity_days()):
        return f"A prescription is valid for at most {validity_days()} days from the date written."
    if not (data.prescriber_name.strip() and data.prescriber_licence.strip()):
        return "The prescriber's name and licence or NPI number are needed to keep it on file."
    return ""


def renewal_renew(*, renewal: RenewalRequest, by, data: RenewInput) -> RenewalRequest:
    """Renewed: a new prescription on file, linked to the old, in the same transaction."""
    problem = renew_problem(data)
    if problem:
        raise CareError(problem)

    def record(locked: RenewalRequest) -> None:
        old = PrescriptionOnFile.objects.select_related("dosage__product").get(
            pk=locked.prescription_id
        )
        try:
            locked.renewed_prescription = prescription_on_file_record(
                user=old.user,
                patient_name=old.patient_name,
                patient_date_of_birth=old.patient_date_of_birth,
                dosage=old.dosage,
                data=RecordInput(
                    line_id=0,
                    directions=data.directions,
                    daily_dose=data.daily_dose,
                    quantity_per_fill=data.quantity_per_fill,
                    # No fill made from it yet: the first fill is counted like a refill.
                    refills_authorised=data.refills_written + 1,
                    date_written=data.date_written,
                    expires_on=data.expires_on,
                ),
                by=by,
                note=(
                    f"Renewal of prescription on file {old.pk} (request {locked.pk}): "
                    f"{data.refills_written} refill{'s' if data.refills_written != 1 else ''} written, "
                    "the first fill and the refills counted as fills."
                ),
                prescriber_name=data.prescriber_name.strip(),
                prescriber_phone=data.prescriber_phone.strip(),
                prescriber_licence=data.prescriber_licence.strip(),
                last_filled_on=old.last_filled_on,
                last_fill_pills=old.last_fill_pills,
            )
        except RefillError as exc:
            raise CareError(exc.message) from exc

    return _step(renewal, RenewalStatus.RENEWED, by=by, note=data.note, effect=record)


def renewals_for_patient(user) -> QuerySet:
    return (
        RenewalRequest.objects.filter(prescription__user=user)
        .select_related("prescription", "renewed_prescription")
        .order_by("-created_at")
    )


def renewal_queue() -> tuple[list[RenewalRequest], list[RenewalRequest]]:
    """Open requests, oldest first; and the last 20 closed ones (two queries)."""
    base = RenewalRequest.objects.select_related("prescription", "renewed_prescription")
    open_ = list(base.filter(status__in=RENEWAL_OPEN).order_by("created_at", "pk"))
    closed = list(base.exclude(status__in=RENEWAL_OPEN).order_by("-updated_at", "-pk")[:20])
    return open_, closed


def last_fill(record: PrescriptionOnFile):
    """The last fill's event (its order and pills), or None."""
    return record.events.filter(kind="fill").select_related("order").order_by("-created_at").first()
