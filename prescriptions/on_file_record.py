"""Recording a prescription on file when the pharmacist approves an order, and changing one.

The pharmacist records each approved prescription item (prefilled from the order line, the
patient details and the prescriber/file given at checkout). The order being approved is its first
fill; it uses no refill. Every change leaves a ``PrescriptionOnFileEvent`` with before and after.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from catalog.models import PackageTier
from orders.models import Order, OrderLine

from .fill_snapshot import line_mark_filled
from .models import PatientDetails, Prescription, PrescriptionOnFile, PrescriptionOnFileEvent
from .refill_rules import RefillError, default_expiry

Event = PrescriptionOnFileEvent.Kind

Event = PrescriptionOnFileEvent.Kind


# --- Recording (the pharmacist, at approval) ---------------------------------------------------


@dataclass(frozen=True)
class RecordInput:
    line_id: int
    directions: str
    daily_dose: Decimal
    quantity_per_fill: int
    refills_authorised: int
    date_written: date
    expires_on: date | None = None


def record_input_check(data: RecordInput) -> None:
    """The checks every prescription recorded on file passes (at approval, transfer in, renewal)."""
    if data.daily_dose <= 0 or data.quantity_per_fill <= 0 or data.refills_authorised < 0:
        raise RefillError(
            "Daily dose and quantity per fill must be above zero; refills zero or more."
        )
    if data.expires_on and data.expires_on < data.date_written:
        raise RefillError("The expiry date is before the date written.")


def prescription_on_file_record(
    *,
    user,
    patient_name: str,
    patient_date_of_birth: date,
    dosage,
    data: RecordInput,
    by,
    note: str,
    **details,
) -> PrescriptionOnFile:
    """Keep a prescription on file that came without an order (transferred in, renewed).

    The same checks and the same history as one recorded at approval; ``details`` are the
    prescriber's and the last fill's (``prescriber_name``, ``last_filled_on``...). Call inside the
    caller's transaction; the model's constraints refuse a record without its evidence.
    """
    record_input_check(data)
    record = PrescriptionOnFile.objects.create(
        user=user,
        patient_name=patient_name,
        patient_date_of_birth=patient_date_of_birth,
        dosage=dosage,
        medicine=dosage.product.name,
        strength=dosage.strength,
        directions=data.directions.strip(),
        daily_dose=data.daily_dose,
        quantity_per_fill=data.quantity_per_fill,
        refills_authorised=data.refills_authorised,
        date_written=data.date_written,
        expires_on=data.expires_on or default_expiry(data.date_written),
        recorded_by=by,
        **details,
    )
    PrescriptionOnFileEvent.objects.create(
        prescription=record, kind=Event.RECORDED, by=by, changes=_snapshot(record), note=note
    )
    return record


def record_defaults(*, order: Order, line: OrderLine) -> dict:
    """Prefill for the record form: the pack bought is the quantity per fill; dates from today."""
    today = timezone.localdate()
    return {
        "quantity_per_fill": line.pack_size * line.packages,
        "refills_authorised": 0,
        "date_written": today,
        "expires_on": default_expiry(today),
    }


def _record_create(*, order: Order, line: OrderLine, data: RecordInput, by) -> PrescriptionOnFile:
    patient = PatientDetails.objects.filter(order=order).first()
    source = Prescription.objects.filter(line=line).first()
    if patient is None or line.tier_id is None:
        raise RefillError(
            f"{line}: the order has no patient details or the pack is no longer sold; record it by hand."
        )
    dosage_id = (
        PackageTier.objects.filter(pk=line.tier_id).values_list("dosage_id", flat=True).first()
    )
    record = PrescriptionOnFile.objects.create(
        user=order.user,
        patient_name=patient.name,
        patient_date_of_birth=patient.date_of_birth,
        dosage_id=dosage_id,
        medicine=line.product_name,
        strength=line.strength,
        directions=data.directions.strip(),
        daily_dose=data.daily_dose,
        quantity_per_fill=data.quantity_per_fill,
        refills_authorised=data.refills_authorised,
        date_written=data.date_written,
        expires_on=data.expires_on or default_expiry(data.date_written),
        prescriber_name=source.prescriber_name if source else "",
        prescriber_phone=source.prescriber_phone if source else "",
        prescriber_licence=source.prescriber_licence if source else "",
        source_order=order,
        source_prescription=source,
        last_filled_on=timezone.localdate(),
        last_fill_pills=line.pack_size * line.packages,
        recorded_by=by,
    )
    PrescriptionOnFileEvent.objects.create(
        prescription=record,
        kind=Event.RECORDED,
        order=order,
        by=by,
        changes=_snapshot(record),
        note=f"Recorded when approving order {order.number}.",
    )
    PrescriptionOnFileEvent.objects.create(
        prescription=record,
        kind=Event.FILL,
        order=order,
        by=by,
        pills=record.last_fill_pills,
        refills_counted=0,
        fill_number=0,
        filled_on=record.last_filled_on,
        note="First fill.",
    )
    line_mark_filled(line_id=line.pk, record=record, filled_on=record.last_filled_on)
    return record


def _snapshot(record: PrescriptionOnFile) -> dict:
    fields = (
        "directions",
        "daily_dose",
        "quantity_per_fill",
        "refills_authorised",
        "date_written",
        "expires_on",
    )
    return {name: str(getattr(record, name)) for name in fields}


def prescription_approve_and_record(
    *,
    order: Order,
    by,
    records: list[RecordInput],
    note: str = "",
    submission_key=None,
    approved_packages: dict[int, int] | None = None,
    shown_capture=None,
):
    """The one approval of a new prescription order: capture (as ordered, or with the packs cut)
    and keep each prescription on file with the refills the pharmacist confirmed.

    One transaction: the capture, the review and the records commit together, so an approved
    order's prescription is on file, and a refused capture records nothing. ``shown_capture`` is
    the amount the pharmacist's button named; a different amount is refused, nothing captured.
    """
    from .decisions import prescription_approve, prescription_approve_with_changes

    for data in records:
        record_input_check(data)
    with transaction.atomic():
        ordered = dict(OrderLine.objects.filter(order=order).values_list("pk", "packages"))
        if any(
            (approved_packages or {}).get(pk, packages) != packages
            for pk, packages in ordered.items()
        ):
            review = prescription_approve_with_changes(
                order=order,
                by=by,
                approved_packages=approved_packages,
                note=note,
                submission_key=submission_key,
                shown_capture=shown_capture,
            )
        else:
            review = prescription_approve(
                order=order,
                by=by,
                note=note,
                submission_key=submission_key,
                shown_capture=shown_capture,
            )
        # The approval holds the order's lock: read it again so a claim into an account that
        # committed after the view loaded the order gives the records that account.
        order = Order.objects.select_for_update().get(pk=order.pk)
        lines = {
            line.pk: line
            for line in OrderLine.objects.filter(order=order, requires_prescription=True)
        }
        for data in records:
            line = lines.get(data.line_id)
            if line is None:
                continue  # removed when approving with changes: nothing dispensed, nothing kept
            if PrescriptionOnFile.objects.filter(
                source_order=order, dosage__tiers=line.tier_id
            ).exists():
                continue  # the same form submitted twice
            _record_create(order=order, line=line, data=data, by=by)
    return review


def prescription_on_file_change(
    *, record: PrescriptionOnFile, by, note: str, **changes
) -> PrescriptionOnFile:
    """Correct a record (directions, dose, refills, expiry); the history keeps before and after."""
    allowed = {"directions", "daily_dose", "quantity_per_fill", "refills_authorised", "expires_on"}
    if set(changes) - allowed:
        raise RefillError("Only directions, dose, quantity, refills and expiry can be changed.")
    if not note.strip():
        raise RefillError("Please say why the prescription on file was changed.")
    with transaction.atomic():
        record = PrescriptionOnFile.objects.select_for_update().get(pk=record.pk)
        before = _snapshot(record)
        for name, value in changes.items():
            setattr(record, name, value)
        try:
            with transaction.atomic():
                record.save()
        except IntegrityError as exc:
            raise RefillError(
                "That change would break the prescription (refills below those used, or dose zero)."
            ) from exc
        PrescriptionOnFileEvent.objects.create(
            prescription=record,
            kind=Event.CHANGED,
            by=by,
            note=note.strip(),
            changes={"before": before, "after": _snapshot(record)},
        )
    return record
