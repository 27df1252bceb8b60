"""Prescriptions on file: recording them, refilling them, the pharmacist's checks, reminders.

The rules, in one place:

* **Recording.** When a pharmacist approves a prescription item they record the prescription
  (prefilled from the order line, the patient details and the prescriber/file given at
  checkout). The order being approved is its first fill; it uses no refill.
* **Pack rule.** A refill is one pack of the prescribed strength. A pack of up to the quantity
  per fill uses one refill; a larger pack uses ``ceil(pack / quantity per fill)`` refills and is
  offered only when that many refills are left.
* **Checks** (``refill_checks``): refills left, not expired, and not too soon: at least
  ``REFILL_TOO_SOON_FRACTION`` (75 %) of the last fill's supply (``pills / daily dose`` days) has
  elapsed. They run before any payment (the Refill button, adding to the cart, placing the
  order: too soon is refused "from <date>"), and again when the pharmacist approves.
* **Approving** (``refill_approve``): one transaction locks the order, then the prescriptions on
  file, re-checks them, captures and counts. A refill that fails the re-check (another refill
  took the last one, it expired) is refused there: nothing captured, the hold released, the
  patient told why. Nothing is ever clamped.
* **Counting.** ``refills_used`` and the last fill move only when the payment is captured,
  inside the capture's transaction (``refills_count_on_capture``, called by
  ``orders.services.order_transition``). The fill row is unique per (prescription, order), so
  the pharmacist's click, a webhook and the reconciliation task count one fill, once; a pack of
  two fills' worth uses two refills. Fills are numbered by the refills used after them, and the
  database refuses a number past the refills authorised.
* **Reminders** (``refill_reminders_send``): one per fill, when the last fill's supply runs out
  within ``REFILL_REMINDER_DAYS``, only to customers who opted in.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Prefetch, QuerySet
from django.urls import reverse
from django.utils import timezone

from catalog.models import LegalClass, PackageTier
from catalog.pricing import tier_per_pill_price
from notifications.models import EmailKind

from .emails import absolute_url, order_email
from .models import (
    CartRefill,
    Order,
    OrderLine,
    OrderRefill,
    PatientDetails,
    Prescription,
    PrescriptionOnFile,
    PrescriptionOnFileEvent,
    RefillReminderSettings,
)
from .prescription_decisions import ReviewError

logger = logging.getLogger(__name__)
Event = PrescriptionOnFileEvent.Kind


class RefillError(ReviewError):
    """A refill request or decision that cannot be carried out; ``message`` is fit to show."""


# --- Dates and the rule ------------------------------------------------------------------------


def validity_days() -> int:
    return int(getattr(settings, "PRESCRIPTION_VALIDITY_DAYS", 365))


def too_soon_fraction() -> float:
    return float(getattr(settings, "REFILL_TOO_SOON_FRACTION", 0.75))


def default_expiry(written: date) -> date:
    return written + timedelta(days=validity_days())


def refills_for_pack(*, record: PrescriptionOnFile, pills: int) -> int:
    """How many refills a pack of ``pills`` uses: one per quantity per fill, started."""
    return max(1, math.ceil(pills / record.quantity_per_fill))


def days_supply(*, pills: int, daily_dose: Decimal) -> int:
    return int(Decimal(pills) / Decimal(daily_dose))


@dataclass(frozen=True)
class RefillChecks:
    """What the pharmacist checks before approving a refill, and the verdict."""

    refills_left: int
    expires_on: date
    expired: bool
    last_filled_on: date | None
    days_since_last_fill: int | None
    days_supply: int | None
    next_refill_from: date | None
    too_soon: bool

    @property
    def needs_new_prescription(self) -> bool:
        """Only expiry or used-up refills need a new prescription; too soon just means later."""
        return self.expired or self.refills_left <= 0

    @property
    def too_soon_text(self) -> str:
        return f"Too soon, from {self.next_refill_from:%B %-d, %Y}" if self.too_soon else ""

    @property
    def refusal(self) -> str:
        """The customer-facing reason a refill cannot be approved now ('' when it can)."""
        if self.expired:
            return (
                f"Your prescription expired on {self.expires_on:%B %-d, %Y}. Please ask your prescriber for a new "
                "prescription and order again with it; nothing was charged for this refill."
            )
        if self.refills_left <= 0:
            return (
                "All the refills on your prescription have been used. Please ask your prescriber for a new "
                "prescription and order again with it; nothing was charged for this refill."
            )
        if self.too_soon:
            return (
                f"It is too soon to refill your prescription: your last fill should last until about "
                f"{self.last_filled_on + timedelta(days=self.days_supply):%B %-d, %Y}. You can ask for this refill "
                f"from {self.next_refill_from:%B %-d, %Y}, or send us a new prescription if your dose has changed. "
                "Nothing was charged and the card hold has been released."
            )
        return ""


def refill_checks(
    record: PrescriptionOnFile, *, today: date | None = None, refills_needed: int = 1
) -> RefillChecks:
    today = today or timezone.localdate()
    supply = since = next_from = None
    too_soon = False
    if record.last_filled_on and record.last_fill_pills:
        supply = days_supply(pills=record.last_fill_pills, daily_dose=record.daily_dose)
        since = (today - record.last_filled_on).days
        next_from = record.last_filled_on + timedelta(days=math.ceil(supply * too_soon_fraction()))
        too_soon = today < next_from
    return RefillChecks(
        refills_left=record.refills_left - (refills_needed - 1),
        expires_on=record.expires_on,
        expired=today > record.expires_on,
        last_filled_on=record.last_filled_on,
        days_since_last_fill=since,
        days_supply=supply,
        next_refill_from=next_from,
        too_soon=too_soon,
    )


def refill_packs(record: PrescriptionOnFile) -> list[dict]:
    """The packs of the prescribed strength, each with the refills it uses and whether it may be chosen."""
    packs = []
    for tier in (
        PackageTier.objects.active().filter(dosage_id=record.dosage_id).order_by("quantity")
    ):
        needed = refills_for_pack(record=record, pills=tier.quantity)
        packs.append(
            {
                "tier": tier,
                "refills_needed": needed,
                "allowed": needed <= record.refills_left,
                "default": False,
                "per_pill": tier_per_pill_price(price=tier.price, quantity=tier.quantity),
            }
        )
    # Preselected: the largest pack within the quantity per fill (what was prescribed per fill).
    within = [
        pack
        for pack in packs
        if pack["allowed"] and pack["tier"].quantity <= record.quantity_per_fill
    ]
    if within or packs:
        (within or packs)[-1 if within else 0]["default"] = True
    return packs


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


def rx_number(record: PrescriptionOnFile) -> str:
    """The prescription number the pharmacy gives a prescription on file: it stays for every refill."""
    return f"RX{record.pk:07d}"


def line_mark_filled(*, line_id: int | None, record: PrescriptionOnFile, filled_on: date) -> None:
    """Snapshot the prescription number and fill date on the order line: its receipt shows them."""
    if line_id is not None:
        OrderLine.objects.filter(pk=line_id).update(
            rx_number=rx_number(record), filled_on=filled_on
        )


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
    from .prescription_decisions import prescription_approve, prescription_approve_with_changes

    for data in records:
        if data.daily_dose <= 0 or data.quantity_per_fill <= 0 or data.refills_authorised < 0:
            raise RefillError(
                "Daily dose and quantity per fill must be above zero; refills zero or more."
            )
        if data.expires_on and data.expires_on < data.date_written:
            raise RefillError("The expiry date is before the date written.")
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


def _own_record(*, user, record_id) -> PrescriptionOnFile:
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


def refill_add_to_cart(*, cart, user, record_id, tier_id) -> CartRefill:
    """Put one pack of the prescribed strength in the cart, linked to the prescription on file."""
    from cart.models import CartLine
    from cart.services import CartError, cart_add_tier

    record = _own_record(user=user, record_id=record_id)
    checks = refill_checks(record)
    if checks.expired:
        raise RefillError(
            f"This prescription expired on {record.expires_on:%B %-d, %Y}; a refill needs a new prescription."
        )
    try:
        tier = PackageTier.objects.active().get(pk=int(tier_id), dosage_id=record.dosage_id)
    except (PackageTier.DoesNotExist, TypeError, ValueError):
        raise RefillError("Please choose a pack of the prescribed strength.") from None
    needed = refills_for_pack(record=record, pills=tier.quantity)
    if needed > record.refills_left:
        raise RefillError(
            f"A pack of {tier.quantity} would use {needed} refills; {record.refills_left} left. Please choose a smaller pack."
        )
    if checks.too_soon:
        raise RefillError(
            f"{checks.too_soon_text}, when about 75% of your last fill is used. Nothing was added to your cart."
        )
    with transaction.atomic():
        if CartRefill.objects.filter(cart_line__cart=cart, prescription=record).exists():
            raise RefillError("A refill of this prescription is already in your cart.")
        if CartLine.objects.filter(cart=cart, tier=tier).exists():
            raise RefillError(
                "This pack is already in your cart. Remove it first, then ask for the refill."
            )
        try:
            change = cart_add_tier(cart=cart, tier_id=tier.pk, packages=1)
        except CartError as exc:
            raise RefillError(str(getattr(exc, "message", exc))) from exc
        return CartRefill.objects.create(cart_line=change.line, prescription=record)


def cart_refills(cart) -> dict[int, PrescriptionOnFile]:
    """Refill lines of a cart by package tier (for the checkout's prescription step)."""
    if cart is None or cart.pk is None:
        return {}
    rows = CartRefill.objects.filter(cart_line__cart=cart).select_related(
        "cart_line", "prescription"
    )
    return {row.cart_line.tier_id: row.prescription for row in rows}


def cart_refills_of_lines(lines) -> dict[int, PrescriptionOnFile]:
    """``cart_refills`` from cart lines read with ``select_related("refill__prescription")``
    (the checkout page's lines), without another query."""
    refills = {}
    for line in lines:
        refill = getattr(
            line, "refill", None
        )  # no refill link: the reverse accessor raises DoesNotExist
        if refill is not None:
            refills[line.tier_id] = refill.prescription
    return refills


def checkout_lines_needing_prescription(*, cart, lines) -> list:
    """The cart lines the checkout's prescription step asks about: refill lines are excluded."""
    refills = cart_refills(cart)
    return [line for line in lines if line.tier_id not in refills]


def refills_verify_for_order(
    *, order: Order, cart, user, add_patient: bool = True
) -> list[OrderRefill]:
    """Link the new order's refill lines to their prescriptions, verified server-side.

    Called inside ``order_place``'s transaction: the prescription belongs to the customer placing
    the order, is not expired, has the refills the pack uses, and is for the strength in the cart;
    the line is one pack. Anything else refuses the checkout. A refill-only order gets the
    patient from the record, so the pharmacist's pages read as for any prescription order.
    """
    links = list(
        CartRefill.objects.filter(cart_line__cart=cart).select_related(
            "cart_line__tier", "prescription"
        )
    )
    if not links:
        return []
    lines = {
        line.tier_id: line
        for line in OrderLine.objects.filter(order=order, requires_prescription=True)
    }
    created = []
    today = timezone.localdate()
    for link in links:
        record = PrescriptionOnFile.objects.select_for_update().get(pk=link.prescription_id)
        cart_line = link.cart_line
        line = lines.get(cart_line.tier_id)
        if line is None:
            continue
        owner = user if user is not None and getattr(user, "is_authenticated", False) else None
        if owner is None or record.user_id != owner.pk:
            raise RefillError(
                "A refill in your cart is not for a prescription on your account. Please remove it."
            )
        if cart_line.tier.dosage_id != record.dosage_id:
            raise RefillError(
                f"{line.product_name} {line.strength}: not the prescribed strength. Please remove the refill."
            )
        if line.packages != 1:
            raise RefillError(
                f"{line.product_name}: a refill is one pack. Please set the quantity to 1."
            )
        needed = refills_for_pack(record=record, pills=line.pack_size)
        if today > record.expires_on:
            raise RefillError(
                f"Your prescription for {record.medicine} expired on {record.expires_on:%B %-d, %Y}; please send a new one."
            )
        if needed > record.refills_left:
            raise RefillError(
                f"{record.medicine}: not enough refills left for this pack ({record.refills_left} left)."
            )
        checks = refill_checks(record, today=today, refills_needed=needed)
        if checks.too_soon:
            raise RefillError(
                f"{record.medicine}: {checks.too_soon_text[0].lower()}{checks.too_soon_text[1:]}, when about 75% of "
                "your last fill is used; nothing was charged."
            )
        created.append(
            OrderRefill.objects.create(
                order=order,
                line=line,
                prescription=record,
                pills=line.pack_size,
                refills_needed=needed,
            )
        )
    if created and add_patient:
        record = created[0].prescription
        PatientDetails.objects.create(
            order=order,
            name=record.patient_name,
            date_of_birth=record.patient_date_of_birth,
            current_medicines=_other_medicines_text(record),
        )
    return created


def refill_line_ids(order: Order) -> frozenset[int]:
    """The order's lines filled from a prescription on file (one query)."""
    return frozenset(OrderRefill.objects.filter(order=order).values_list("line_id", flat=True))


def _other_medicines_text(record: PrescriptionOnFile) -> str:
    others = active_records_for_patient(record).exclude(pk=record.pk)
    return "; ".join(f"{o.medicine} {o.strength} (on file)" for o in others)


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
    links = list(OrderRefill.objects.filter(order_id__in=ids).select_related("prescription"))
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


def runs_out_on(record: PrescriptionOnFile) -> date | None:
    if not record.last_filled_on or not record.last_fill_pills:
        return None
    return record.last_filled_on + timedelta(
        days=days_supply(pills=record.last_fill_pills, daily_dose=record.daily_dose)
    )


def _locked_refill_reasons(order: Order, submission_key):
    """Lock the order, then its prescriptions on file (the capture's order: no deadlock with a
    webhook), and re-check them. Returns (the review already made with this form or None, reasons)."""
    from .prescription_decisions import _lock_for_review

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
    from .prescription_decisions import _require, prescription_approve

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
    from .prescription_decisions import prescription_reject

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


# --- Order again -------------------------------------------------------------------------------


def order_again(*, order: Order, cart) -> tuple[list[str], list[str]]:
    """Put a past order's general-sale and pharmacy-only packs back in the cart.

    Prescription items are skipped (they need a prescription, or a refill from "My prescriptions").
    Returns (added, skipped) descriptions.
    """
    from cart.services import CartError, cart_add_tier

    added, skipped = [], []
    lines = order.lines.select_related("tier__dosage__product")
    for line in lines:
        label = f"{line.product_name} {line.strength}, {line.pack_size} pills"
        tier = line.tier
        if (
            tier is None
            or not tier.is_active
            or line.requires_prescription
            or tier.dosage.product.legal_class == LegalClass.PRESCRIPTION
        ):
            skipped.append(label)
            continue
        try:
            cart_add_tier(cart=cart, tier_id=tier.pk, packages=line.packages)
        except CartError:
            skipped.append(label)
        else:
            added.append(label)
    return added, skipped


# --- Reminders ---------------------------------------------------------------------------------


def reminder_settings_for(user) -> RefillReminderSettings | None:
    return RefillReminderSettings.objects.filter(user=user).first()


def reminder_consent_from_checkout(*, user, agreed: bool) -> None:
    """The checkout's box: the first answer sets the default; the account setting rules afterwards."""
    if user is None or not getattr(user, "is_authenticated", False):
        return
    RefillReminderSettings.objects.get_or_create(user=user, defaults={"reminders": bool(agreed)})


def refill_reminders_send(*, today: date | None = None, within_days: int | None = None) -> int:
    """Queue one reminder per fill for supplies running out within N days; returns how many.

    The REMINDED row is unique per (prescription, fill order), so a job run every few hours (or
    twice at once) reminds once per fill; a new fill makes a new reminder possible.
    """
    today = today or timezone.localdate()
    within = (
        within_days
        if within_days is not None
        else int(getattr(settings, "REFILL_REMINDER_DAYS", 7))
    )
    sent = 0
    opted_in = RefillReminderSettings.objects.filter(reminders=True).values_list(
        "user_id", flat=True
    )
    candidates = PrescriptionOnFile.objects.filter(
        user_id__in=opted_in, last_filled_on__isnull=False
    ).select_related("user")
    for record in candidates:
        runs_out = runs_out_on(record)
        if runs_out is None or not (today <= runs_out <= today + timedelta(days=within)):
            continue
        fill = record.events.filter(kind=Event.FILL).order_by("-created_at").first()
        if fill is None or fill.order_id is None:
            continue
        try:
            with transaction.atomic():
                PrescriptionOnFileEvent.objects.create(
                    prescription=record,
                    kind=Event.REMINDED,
                    order_id=fill.order_id,
                    note=f"Supply runs out about {runs_out:%B %-d, %Y}.",
                )
                _queue_reminder(record=record, fill=fill, runs_out=runs_out, today=today)
        except IntegrityError:
            continue  # already reminded for this fill
        sent += 1
    return sent


def _queue_reminder(
    *, record: PrescriptionOnFile, fill: PrescriptionOnFileEvent, runs_out: date, today: date
) -> None:
    """The reminder's own details; ``orders.emails.order_email`` adds the order and queues it."""
    prefs = reminder_settings_for(record.user)
    needs_new = record.refills_left <= 0 or record.expires_on < runs_out
    order_email(
        order=fill.order,
        kind=EmailKind.REFILL_REMINDER,
        event=fill.pk,
        details={
            "runs_out": runs_out.isoformat(),
            "runs_out_text": f"{runs_out:%B %-d, %Y}",
            "needs_new_prescription": needs_new,
            "medicine": f"{record.medicine} {record.strength}"
            if prefs and prefs.name_medicine
            else "",
            "refills_left": record.refills_left,
            "prescription_url": absolute_url(reverse("refills:detail", kwargs={"pk": record.pk})),
        },
    )
