"""Prescription orders: what the customer gave at checkout, and the pharmacist's decisions.

A prescription order is authorised at checkout but not charged: the card hold waits for a
pharmacist. Every decision goes through a function here, holds the order row locked, and leaves
a ``PrescriptionReview`` that can never be edited. Money moves only through the order services
(``order_capture_payment``, ``order_cancel``), so the card hold, the order status and the
payment status stay in one set of hands.

Each action is idempotent: the review form carries a one-time ``submission_key``, so a
double-clicked button records, captures and emails once; and an order that has left review
refuses a second decision with a message instead of charging again.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import partial

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import DateTimeField, F, OuterRef, Prefetch, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from djmoney.money import Money

from catalog.models import PackageTier
from cart.calculations import capped
from notifications.models import EmailKind
from pharmacy.permissions import require_permission

from . import stripe_gateway as gateway
from .emails import order_email
from .files import CheckedUpload, private_storage
from .models import (
    Order,
    OrderEvent,
    OrderLine,
    PatientDetails,
    Prescription,
    PrescriptionReview,
    ReviewAction,
    Shipment,
)
from .totals import line_snapshot_fields, order_recalculate, order_snapshot_fields
from .services import OrderError, order_cancel, order_capture_payment, order_transition
from .state import OrderStatus, PaymentStatus

logger = logging.getLogger(__name__)

PHARMACIST_GROUP = "pharmacist"
LAPSE_NOTE = "Card authorisation expired before review."
LAPSE_CUSTOMER_REASON = (
    "We could not finish checking your prescription within 7 days, which is as long as your bank "
    "holds a card payment for us. The hold has lapsed, so we have canceled the order and nothing "
    "was charged. You are welcome to order again, or call us and we will help."
)


class ReviewError(OrderError):
    """A review action that cannot be carried out; ``message`` is fit to show the pharmacist."""


# --- Who may review -------------------------------------------------------------------------


def is_pharmacist(user) -> bool:
    """Pharmacists (the "pharmacist" group) and superusers; cached on the user for the request."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.is_superuser:
        return True
    cached = getattr(user, "_is_pharmacist", None)
    if cached is None:
        cached = user.groups.filter(name=PHARMACIST_GROUP).exists()
        user._is_pharmacist = cached
    return cached


def _require(user, permission: str, action: str) -> None:
    """Each decision checks its own permission (``orders.<codename>``); only a person decides."""
    require_permission(user, f"orders.{permission}", action=action, system_allowed=False)


# --- Checkout: what the customer gave -------------------------------------------------------


@dataclass(frozen=True)
class PrescriptionItem:
    """For one prescription item in the cart (by package tier): a copy, the prescriber, or both."""

    tier_id: int
    upload: CheckedUpload | None = None
    prescriber_name: str = ""
    prescriber_phone: str = ""
    prescriber_licence: str = ""


@dataclass(frozen=True)
class PrescriptionIntake:
    patient_name: str
    date_of_birth: date
    allergies: str = ""
    current_medicines: str = ""
    items: tuple[PrescriptionItem, ...] = field(default_factory=tuple)


def age_on(*, born: date, today: date) -> int:
    """Whole years, as a birthday counts them (born 29 Feb: a year older on 1 March)."""
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def prescriptions_record(*, order: Order, intake: PrescriptionIntake) -> list[Prescription]:
    """Attach the patient and the prescriptions to a new order, inside ``order_place``'s transaction.

    Uploaded files are written only once that transaction commits: a checkout refused after this
    point (stock ran out, a price changed) rolls back and leaves no file behind.
    """
    PatientDetails.objects.create(
        order=order,
        name=intake.patient_name.strip(),
        date_of_birth=intake.date_of_birth,
        allergies=intake.allergies.strip(),
        current_medicines=intake.current_medicines.strip(),
    )
    # Lines filled from a prescription on file (issue #16, linked just before) need no new prescription.
    lines = {
        line.tier_id: line
        for line in OrderLine.objects.filter(order=order, requires_prescription=True, refill__isnull=True)
    }
    items = {item.tier_id: item for item in intake.items}
    missing = [line for tier_id, line in lines.items() if tier_id not in items]
    if missing:
        raise OrderError(f"Please upload a prescription or give the prescriber's details for {missing[0]}.")
    created = []
    for tier_id, line in lines.items():
        item = items[tier_id]
        name = item.upload.new_name() if item.upload else ""
        prescription = Prescription.objects.create(
            order=order,
            line=line,
            description=f"{line.product_name} {line.strength}, {line.pack_size} pills",
            file=name,
            content_type=item.upload.content_type if item.upload else "",
            size=item.upload.size if item.upload else None,
            prescriber_name=item.prescriber_name.strip(),
            prescriber_phone=item.prescriber_phone.strip(),
            prescriber_licence=item.prescriber_licence.strip(),
        )
        if item.upload:
            # Read now (at most PRESCRIPTION_MAX_UPLOAD_BYTES): the upload may be closed by commit time.
            item.upload.file.seek(0)
            content = ContentFile(item.upload.file.read())
            transaction.on_commit(partial(_write_upload, prescription.pk, name, content))
        created.append(prescription)
    return created


def _write_upload(prescription_id, name: str, upload) -> None:
    storage = private_storage()
    saved = storage.save(name, upload)
    if saved != name:  # never expected with random names; keep the record pointing at the file
        Prescription.objects.filter(pk=prescription_id).update(file=saved)


# --- The queue ------------------------------------------------------------------------------


def hold_validity() -> timedelta:
    """How long Stripe keeps a manual-capture card hold (7 days)."""
    return timedelta(hours=getattr(settings, "STRIPE_AUTHORISATION_VALIDITY_HOURS", 7 * 24))


def with_authorised_at(queryset: QuerySet) -> QuerySet:
    """Annotate ``authorised_at``: when the card hold began (the payment -> authorized event).

    The order's creation stands in if the event is missing; it is earlier, so the time left
    errs on the short side.
    """
    event = OrderEvent.objects.filter(
        order=OuterRef("pk"), kind=OrderEvent.Kind.PAYMENT, to_status=PaymentStatus.AUTHORIZED
    ).order_by("-created_at")
    return queryset.annotate(
        authorised_at=Coalesce(Subquery(event.values("created_at")[:1]), "created_at", output_field=DateTimeField())
    )


def review_queue() -> QuerySet:
    """Orders waiting for a pharmacist, the oldest card hold first, with everything the page shows."""
    return (
        with_authorised_at(Order.objects.filter(status=OrderStatus.AWAITING_REVIEW))
        .select_related("patient", "user")
        .prefetch_related(
            "lines",
            Prefetch("prescriptions", queryset=Prescription.objects.order_by("created_at", "description")),
            Prefetch("reviews", queryset=PrescriptionReview.objects.select_related("by")),
        )
        .order_by("authorised_at", "created_at")
    )


def ready_to_ship() -> QuerySet:
    return Order.objects.filter(status=OrderStatus.READY_TO_SHIP).order_by("updated_at")


def hold_expires_at(order: Order) -> datetime:
    return order.authorised_at + hold_validity()


# --- What the customer sees -----------------------------------------------------------------


@dataclass(frozen=True)
class ReviewState:
    code: str  # awaiting | information_requested | approved | approved_with_changes | rejected | expired
    label: str
    detail: str = ""


def review_state(*, order: Order, reviews: list[PrescriptionReview]) -> ReviewState | None:
    """The review in plain words for the order page; None for an order that needs no review."""
    decisions = [r for r in reviews if r.action != ReviewAction.SHIPPED]
    latest = decisions[-1] if decisions else None
    if latest is None:
        if order.status == OrderStatus.AWAITING_REVIEW:
            return ReviewState("awaiting", "Awaiting pharmacist review")
        return None
    if latest.action == ReviewAction.INFORMATION_REQUESTED:
        if order.status == OrderStatus.AWAITING_REVIEW:
            return ReviewState("information_requested", "More information requested", latest.note)
        return None
    if latest.action == ReviewAction.APPROVED:
        return ReviewState("approved", "Approved")
    if latest.action == ReviewAction.APPROVED_WITH_CHANGES:
        return ReviewState("approved_with_changes", "Approved with changes", latest.note)
    if latest.action == ReviewAction.REJECTED:
        return ReviewState("rejected", "Not approved", latest.note)
    if latest.action == ReviewAction.AUTHORISATION_EXPIRED:
        return ReviewState("expired", "Canceled: card authorisation expired before review", LAPSE_CUSTOMER_REASON)
    return None


# --- Pharmacist actions ---------------------------------------------------------------------


def _lock_for_review(order: Order, submission_key) -> tuple[Order, PrescriptionReview | None]:
    """Lock the order; return the review already made with this form, if any (a double submit)."""
    locked = Order.objects.select_for_update().get(pk=order.pk)
    if submission_key:
        existing = PrescriptionReview.objects.filter(submission_key=submission_key).first()
        if existing is not None:
            if existing.order_id != locked.pk:
                raise ReviewError("This form was already used for another order. Please reload the page.")
            return locked, existing
    if locked.status != OrderStatus.AWAITING_REVIEW:
        raise ReviewError(f"Order {locked.number} is no longer awaiting review ({locked.get_status_display().lower()}).")
    return locked, None


def _gateway_message(exc: gateway.PaymentGatewayError) -> str:
    return f"Stripe refused the request ({exc.code or 'error'}); nothing was changed. {exc.user_message}"


def prescription_approve(*, order: Order, by, note: str = "", submission_key=None) -> PrescriptionReview:
    """Approve as ordered: capture the whole hold and send the order to the dispensary."""
    _require(by, "approve_prescription", "approve a prescription order")
    with transaction.atomic():
        order, existing = _lock_for_review(order, submission_key)
        if existing is not None:
            return existing
        try:
            order = order_capture_payment(order=order, amount=None, by=by)
        except gateway.PaymentGatewayError as exc:
            raise ReviewError(_gateway_message(exc)) from exc
        review = PrescriptionReview.objects.create(
            order=order,
            action=ReviewAction.APPROVED,
            by=by,
            note=note.strip(),
            ordered_total=order.total,
            approved_total=order.amount_captured,
            submission_key=submission_key,
        )
        order_email(order=order, kind=EmailKind.PRESCRIPTION_APPROVED)
    return review


def prescription_approve_with_changes(
    *, order: Order, by, approved_packages: dict[int, int], note: str, submission_key=None
) -> PrescriptionReview:
    """Approve less than was ordered: lines cut to what is prescribed (0 removes a line).

    Only the reduced total is captured; Stripe releases the rest of the hold. The order lines
    then show the approved packages; what was ordered stays in the review's ``changes``.
    Shipping stays as the customer agreed it.
    """
    _require(by, "approve_prescription", "approve a prescription order")
    if not note.strip():
        raise ReviewError("Please tell the customer why the order was changed.")
    with transaction.atomic():
        order, existing = _lock_for_review(order, submission_key)
        if existing is not None:
            return existing
        lines = list(OrderLine.objects.select_for_update().filter(order=order).order_by("id"))
        unknown = set(approved_packages) - {line.pk for line in lines}
        if unknown:
            raise ReviewError("The order's lines have changed. Please reload the page.")
        changes, kept = [], 0
        for line in lines:
            approved = approved_packages.get(line.pk, line.packages)
            if not 0 <= approved <= line.packages:
                raise ReviewError(f"{line}: approve between 0 and {line.packages} packages (what was ordered).")
            if approved:
                kept += 1
            if approved != line.packages:
                changes.append((line, approved))
        if not changes:
            raise ReviewError("Nothing was changed. Use “Approve” to approve the order as ordered.")
        if not kept:
            raise ReviewError("Every line was removed. Use “Do not approve” to reject the order instead.")

        ordered_total = order.total
        # Every figure of the changed order (lines, discount, shipping, tax, total) from the
        # calculation module, with the code and tax rate the order was placed with.
        recalculated = order_recalculate(order=order, lines=lines, packages={line.pk: approved for line, approved in changes})
        record, returned = [], []
        for line, approved in changes:
            record.append(
                {
                    "line_id": line.pk,
                    "item": f"{line.product_name} {line.strength}, {line.pack_size} pills",
                    "ordered_packages": line.packages,
                    "approved_packages": approved,
                    "unit_price": str(line.unit_price.amount),
                    "ordered_line_total": str(line.line_total.amount),
                    "approved_line_total": str(recalculated.line(line.pk).line_total.amount if approved else 0),
                }
            )
            if order.stock_reserved and line.tier_id:
                returned.append((line.tier_id, line.packages - approved))
            if approved == 0:
                line.delete()
        removed = {line.pk for line, approved in changes if approved == 0}
        for line in lines:
            if line.pk in removed:
                continue
            figures = recalculated.line(line.pk)
            line.packages = figures.packages
            for name, value in line_snapshot_fields(figures).items():
                setattr(line, name, value)
            line.save(update_fields=["packages", "line_total", "discount", "tax"])
        for tier_id, packages in returned:
            PackageTier.objects.filter(pk=tier_id, stock__isnull=False).update(stock=F("stock") + packages)

        fields = order_snapshot_fields(recalculated)
        for name in ("subtotal", "savings", "discount", "shipping", "tax", "total"):
            setattr(order, name, fields[name])
        order.save(update_fields=["subtotal", "savings", "discount", "shipping", "tax", "total", "updated_at"])
        summary = "; ".join(f"{c['item']}: {c['ordered_packages']} → {c['approved_packages']}" for c in record)
        OrderEvent.objects.create(
            order=order,
            kind=OrderEvent.Kind.NOTE,
            note=f"Approved with changes ({summary}); total {ordered_total} → {order.total}. {note.strip()}",
            by=by,
        )
        if returned:
            OrderEvent.objects.create(order=order, kind=OrderEvent.Kind.STOCK, note="Stock of removed packages returned.", by=by)
        try:
            order = order_capture_payment(order=order, amount=capped(amount=order.total, authorised=ordered_total), by=by)
        except gateway.PaymentGatewayError as exc:
            raise ReviewError(_gateway_message(exc)) from exc
        review = PrescriptionReview.objects.create(
            order=order,
            action=ReviewAction.APPROVED_WITH_CHANGES,
            by=by,
            note=note.strip(),
            ordered_total=ordered_total,
            approved_total=order.amount_captured,
            changes=record,
            submission_key=submission_key,
        )
        order_email(
            order=order,
            kind=EmailKind.PRESCRIPTION_APPROVED,
            details={"note": note.strip(), "ordered_total": ordered_total, "approved_total": order.amount_captured},
        )
    return review


def prescription_reject(*, order: Order, by, reason: str, submission_key=None) -> PrescriptionReview:
    """Do not approve: the PaymentIntent is canceled (the hold released, nothing charged)."""
    _require(by, "reject_prescription", "refuse a prescription order")
    reason = (reason or "").strip()
    if not reason:
        raise ReviewError("Please give the reason; the customer will read it.")
    with transaction.atomic():
        order, existing = _lock_for_review(order, submission_key)
        if existing is not None:
            return existing
        ordered_total = order.total
        try:
            order = order_cancel(order=order, by=by, reason=f"Prescription not approved: {reason}")
        except gateway.PaymentGatewayError as exc:
            raise ReviewError(_gateway_message(exc)) from exc
        review = PrescriptionReview.objects.create(
            order=order,
            action=ReviewAction.REJECTED,
            by=by,
            note=reason,
            ordered_total=ordered_total,
            submission_key=submission_key,
        )
        order_email(order=order, kind=EmailKind.PRESCRIPTION_REJECTED, details={"reason": reason})
    return review


def prescription_request_information(*, order: Order, by, message: str, submission_key=None) -> PrescriptionReview:
    """Ask the customer a question; the order stays in review (the hold keeps running)."""
    _require(by, "request_prescription_information", "ask a customer about their prescription")
    message = (message or "").strip()
    if not message:
        raise ReviewError("Please write the question for the customer.")
    with transaction.atomic():
        order, existing = _lock_for_review(order, submission_key)
        if existing is not None:
            return existing
        review = PrescriptionReview.objects.create(
            order=order,
            action=ReviewAction.INFORMATION_REQUESTED,
            by=by,
            note=message,
            ordered_total=order.total,
            submission_key=submission_key,
        )
        OrderEvent.objects.create(order=order, kind=OrderEvent.Kind.NOTE, note=f"More information requested: {message}", by=by)
        order_email(order=order, kind=EmailKind.INFORMATION_REQUESTED, event=review.pk, details={"message": message})
    return review


def order_mark_shipped(*, order: Order, by, carrier: str, tracking_number: str) -> Shipment:
    """The parcel left: record carrier and tracking number, move to shipped, email the customer.

    Marking an order shipped twice returns the first shipment.
    """
    _require(by, "mark_shipped", "mark an order shipped")
    carrier, tracking_number = (carrier or "").strip(), (tracking_number or "").strip()
    if not carrier or not tracking_number:
        raise ReviewError("Please give the carrier and the tracking number.")
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        existing = Shipment.objects.filter(order=order).first()
        if existing is not None:
            return existing
        if order.status != OrderStatus.READY_TO_SHIP or order.payment_status != PaymentStatus.CAPTURED:
            raise ReviewError(f"Order {order.number} is not ready to ship ({order.get_status_display().lower()}).")
        shipment = Shipment.objects.create(order=order, carrier=carrier, tracking_number=tracking_number, by=by)
        order_transition(order=order, to=OrderStatus.SHIPPED, by=by, note=f"Shipped with {carrier}, tracking {tracking_number}.")
        order_email(
            order=order,
            kind=EmailKind.SHIPPED,
            details={"carrier": carrier, "tracking_number": tracking_number},
        )
    return shipment


# --- Periodic work --------------------------------------------------------------------------


def prescriptions_lapse_expired(*, now: datetime | None = None) -> int:
    """Cancel review orders whose card hold is older than Stripe keeps it; tell the customer.

    Capturing such a hold would fail anyway; canceling releases it explicitly (an intent Stripe
    already canceled is fine) and gives the stock back. Returns how many orders were canceled.
    """
    cutoff = (now or timezone.now()) - hold_validity()
    candidates = with_authorised_at(
        Order.objects.filter(status=OrderStatus.AWAITING_REVIEW, payment_status=PaymentStatus.AUTHORIZED)
    ).filter(authorised_at__lte=cutoff)
    lapsed = 0
    for order_id in candidates.values_list("pk", flat=True):
        try:
            with transaction.atomic():
                order = Order.objects.select_for_update().get(pk=order_id)
                if order.status != OrderStatus.AWAITING_REVIEW:
                    continue  # a pharmacist got there first
                ordered_total = order.total
                order = order_cancel(order=order, by=None, reason=LAPSE_NOTE)
                PrescriptionReview.objects.create(
                    order=order, action=ReviewAction.AUTHORISATION_EXPIRED, note=LAPSE_NOTE, ordered_total=ordered_total
                )
                order_email(order=order, kind=EmailKind.PRESCRIPTION_REJECTED, details={"reason": LAPSE_CUSTOMER_REASON})
        except (gateway.PaymentGatewayError, OrderError):
            logger.exception("Could not lapse the expired card hold of order %s", order_id)
            continue
        lapsed += 1
    return lapsed
