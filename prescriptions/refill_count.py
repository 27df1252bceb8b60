"""Counting a fill: only when the money is taken (issue #16).

``refills_used`` and the last fill move only when the payment is captured, inside the capture's
transaction (``refills_count_on_capture``, reached from ``orders.services.order_transition``
through the prescription step). The fill row is unique per (prescription, order), so the
pharmacist's click, a webhook and the reconciliation task count one fill, once; a pack of two
fills' worth uses two refills. Fills are numbered by the refills used after them, and the database
refuses a number past the refills authorised.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from orders.models import Order

from .fill_snapshot import line_mark_filled
from .models import OrderRefill, PrescriptionOnFile, PrescriptionOnFileEvent
from .refill_rules import RefillError

Event = PrescriptionOnFileEvent.Kind

Event = PrescriptionOnFileEvent.Kind


# --- Counting a fill: only when the money is taken ---------------------------------------------


def refills_count_on_capture(*, order: Order, by=None) -> int:
    """Count the order's refills as fills; called in the capture's transaction. Idempotent.

    The fill row's unique (prescription, order) constraint is the key: a replayed capture (a
    second webhook, the pharmacist's retry, the reconciliation task) finds it and counts nothing.
    Returns the number of fills counted now.
    """
    counted = 0
    for link in OrderRefill.objects.filter(order=order).order_by("prescription_id"):
        record = PrescriptionOnFile.objects.select_for_update().get(pk=link.prescription_id)
        if PrescriptionOnFileEvent.objects.filter(
            prescription=record, order=order, kind=Event.FILL
        ).exists():
            continue
        use = link.refills_needed
        if use > record.refills_left:
            # Never clamped: ``refill_approve`` re-checks on these locked rows before it captures,
            # so reaching this is a bug; the capture's transaction rolls back.
            raise RefillError(
                f"{record}: this fill needs {use} refill{'s' if use != 1 else ''}, {record.refills_left} left. Nothing was counted."
            )
        today = timezone.localdate()
        try:
            with transaction.atomic():
                PrescriptionOnFileEvent.objects.create(
                    prescription=record,
                    kind=Event.FILL,
                    order=order,
                    pills=link.pills,
                    refills_counted=use,
                    fill_number=record.refills_used + use,
                    filled_on=today,
                    note="Refill." if use == 1 else f"Refill ({use} refills).",
                    by=by if getattr(by, "is_authenticated", False) else None,
                )
        except IntegrityError:
            continue  # counted by a concurrent capture report
        line_mark_filled(line_id=link.line_id, record=record, filled_on=today)
        record.refills_used += use
        record.last_filled_on = today
        record.last_fill_pills = link.pills
        record.save(
            update_fields=["refills_used", "last_filled_on", "last_fill_pills", "updated_at"]
        )
        counted += 1
    return counted
