"""The pharmacist and refill orders: the queue's refill rows, approve, refuse (issues #16, #21).

Approving (``refill_approve``) is one transaction: it locks the order, then the prescriptions on
file, re-checks them, captures and counts. A refill that fails the re-check (another refill took
the last one, it expired) is refused there: nothing captured, the hold released, the patient told
why.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.db import transaction
from django.utils import timezone

from orders.models import Order

from .models import OrderRefill, PrescriptionOnFile, PrescriptionOnFileEvent
from .refill_rules import RefillError, refill_checks, runs_out_on

Event = PrescriptionOnFileEvent.Kind

Event = PrescriptionOnFileEvent.Kind


# --- The pharmacist: refill checks, approve, refuse --------------------------------------------


def review_queue_split(
    orders: list[Order], *, today: date | None = None
) -> tuple[list[Order], list[Order]]:
    """Split the review queue into new prescriptions and refills; refills carry their checks.

    Three queries for the whole queue: the refill links with their records, and the other
    active prescriptions on file of the same customers.
    """
    today = today or timezone.localdate()
    ids = [order.pk for order in orders]
    # The order's auto-refill run (issue 25) rides along: "Auto-refill" on the card, no query.
    links = list(
        OrderRefill.objects.filter(order_id__in=ids).select_related(
            "prescription", "order__autorefill_run"
        )
    )
    by_order: dict = {}
    for link in links:
        by_order.setdefault(link.order_id, []).append(link)
    users = {link.prescription.user_id for link in links if link.prescription.user_id}
    on_file: dict = {}
    for record in PrescriptionOnFile.objects.filter(
        user_id__in=users, expires_on__gte=today
    ).order_by("medicine"):
        on_file.setdefault(record.user_id, []).append(record)
    new, refills = [], []
    for order in orders:
        order_links = by_order.get(order.pk)
        if not order_links:
            new.append(order)
            continue
        order.refill_rows = [_refill_row(link, on_file, today) for link in order_links]
        order.refill_ok = all(not row["checks"].refusal for row in order.refill_rows)
        order.autorefill = any(
            getattr(link.order, "autorefill_run", None) is not None for link in order_links
        )
        refills.append(order)
    return new, refills


def _refill_row(link: OrderRefill, on_file: dict, today: date) -> dict:
    record = link.prescription
    others = [
        other
        for other in on_file.get(record.user_id, [])
        if other.pk != record.pk and other.patient_name.casefold() == record.patient_name.casefold()
    ]
    return {
        "link": link,
        "record": record,
        "checks": refill_checks(record, today=today, refills_needed=link.refills_needed),
        "others": others,
    }


def refills_due(*, today: date | None = None, within_days: int = 7) -> list[PrescriptionOnFile]:
    """Prescriptions whose last fill runs out within ``within_days`` (for the queue's 'due this week')."""
    today = today or timezone.localdate()
    due = []
    candidates = PrescriptionOnFile.objects.filter(
        expires_on__gte=today, last_filled_on__isnull=False
    ).select_related("user")
    for record in candidates.iterator():
        runs_out = runs_out_on(record)
        if runs_out is not None and today <= runs_out <= today + timedelta(days=within_days):
            record.runs_out = runs_out
            due.append(record)
    return sorted(due, key=lambda r: r.runs_out)


def _locked_refill_reasons(order: Order, submission_key):
    """Lock the order, then its prescriptions on file (the capture's order: no deadlock with a
    webhook), and re-check them. Returns (the review already made with this form or None, reasons)."""
    from .decisions import _lock_for_review

    locked, existing = _lock_for_review(order, submission_key)
    if existing is not None:
        return locked, existing, []
    links = list(OrderRefill.objects.filter(order=locked))
    if not links:
        raise RefillError(f"Order {locked.number} is not a refill.")
    held = {
        r.pk: r
        for r in PrescriptionOnFile.objects.select_for_update()
        .filter(pk__in=[l.prescription_id for l in links])
        .order_by("pk")
    }
    today = timezone.localdate()
    reasons = [
        refill_checks(held[l.prescription_id], today=today, refills_needed=l.refills_needed).refusal
        for l in links
    ]
    return locked, None, [reason for reason in reasons if reason]


def refill_approve(*, order: Order, by, note: str = "", submission_key=None):
    """Approve a refill: lock, re-check, capture and count in one transaction.

    Two pharmacists approving two refills of one prescription at once with one refill left: the
    second waits for the first's lock, sees no refill left and refuses its order (hold released,
    patient told why). Returns the review: approved, or rejected when the re-check failed.
    """
    from .decisions import _require, prescription_approve

    _require(by, "approve_prescription", "approve a prescription order")
    with transaction.atomic():
        locked, existing, reasons = _locked_refill_reasons(order, submission_key)
        if existing is not None:
            return existing
        if reasons:
            return _refuse_locked(
                order=locked, by=by, reasons=reasons, submission_key=submission_key
            )
        return prescription_approve(
            order=locked,
            by=by,
            note=note or "Refill approved.",
            submission_key=submission_key,
            refill_checked=True,
        )


def refill_refuse(*, order: Order, by, reason: str = "", submission_key=None):
    """Refuse a refill: release the hold and tell the patient why (the failed checks, and the
    pharmacist's own reason, which is needed when every check passes)."""
    with transaction.atomic():
        locked, existing, reasons = _locked_refill_reasons(order, submission_key)
        if existing is not None:
            return existing
        if reason.strip():
            reasons.append(reason.strip())
        if not reasons:
            raise RefillError(
                "Every check passes: approve the refill, or give the patient your reason for refusing it."
            )
        return _refuse_locked(order=locked, by=by, reasons=reasons, submission_key=submission_key)


def _refuse_locked(*, order: Order, by, reasons: list[str], submission_key):
    from .decisions import prescription_reject

    review = prescription_reject(
        order=order, by=by, reason=" ".join(reasons), submission_key=submission_key
    )
    for link in OrderRefill.objects.filter(order=order):
        PrescriptionOnFileEvent.objects.create(
            prescription_id=link.prescription_id,
            kind=Event.REFUSED,
            order=order,
            by=by,
            note=" ".join(reasons),
        )
    return review
