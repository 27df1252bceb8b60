"""The pharmacist's decisions on a prescription order: approve, approve with changes, reject, ask.

A prescription order is authorised at checkout but not charged: the card hold waits for a
pharmacist. Every decision goes through a function here, holds the order row locked, and leaves
a ``PrescriptionReview`` that can never be edited. Money moves only through the order services
(``order_capture_payment``, ``order_cancel``), and each decision emails the customer through
``orders.emails.order_email``. A hold nobody decided on in time lapses (``prescriptions_lapse_expired``).
Approving a new prescription also offers counselling (``prescriptions.messages``, issue 25).

Each action is idempotent: the review form carries a one-time ``submission_key``, so a
double-clicked button records, captures and emails once; and an order that has left review
refuses a second decision with a message instead of charging again.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from djmoney.money import Money

from cart.calculations import capped, format_money
from catalog.models import PackageTier
from notifications.models import EmailKind
from orders.emails import order_email
from orders.holds import hold_validity, with_authorised_at
from orders.models import Order, OrderEvent, OrderLine
from orders.services import OrderError, order_cancel, order_capture_payment
from orders.state import OrderStatus, PaymentStatus
from orders.totals import line_snapshot_fields, order_recalculate, order_snapshot_fields
from payments import stripe_gateway as gateway
from pharmacy.permissions import require_permission

from .messages import counselling_offer_post
from .models import PrescriptionReview, ReviewAction
from .queue import LAPSE_CUSTOMER_REASON

logger = logging.getLogger(__name__)

LAPSE_NOTE = "Card authorisation expired before review."


class ReviewError(OrderError):
    """A review action that cannot be carried out; ``message`` is fit to show the pharmacist."""


def _require(user, permission: str, action: str) -> None:
    """Each decision checks its own permission (``prescriptions.<codename>``); only a person decides."""
    require_permission(user, f"prescriptions.{permission}", action=action, system_allowed=False)


def _lock_for_review(order: Order, submission_key) -> tuple[Order, PrescriptionReview | None]:
    """Lock the order; return the review already made with this form, if any (a double submit)."""
    locked = Order.objects.select_for_update().get(pk=order.pk)
    if submission_key:
        existing = PrescriptionReview.objects.filter(submission_key=submission_key).first()
        if existing is not None:
            if existing.order_id != locked.pk:
                raise ReviewError(
                    "This form was already used for another order. Please reload the page."
                )
            return locked, existing
    if locked.status != OrderStatus.AWAITING_REVIEW:
        raise ReviewError(
            f"Order {locked.number} is no longer awaiting review ({locked.get_status_display().lower()})."
        )
    return locked, None


def _gateway_message(exc: gateway.PaymentGatewayError) -> str:
    return f"Stripe refused the request ({exc.code or 'error'}); nothing was changed. {exc.user_message}"


REFILL_NEEDS_ITS_CHECKS = (
    "This order refills a prescription on file: use “Approve refill”, which checks the refills left, "
    "the expiry and the days since the last fill."
)


def _refuse_unchecked_refill(order: Order) -> None:
    """A refill is approved only through ``refill_review.refill_approve``, which runs its
    checks first: the plain approval buttons beside the refill panel must not skip them."""
    if order.refills.exists():
        raise ReviewError(REFILL_NEEDS_ITS_CHECKS)


class CaptureChanged(ReviewError):
    """The amount the page showed is not what would be captured now; nothing was captured."""

    def __init__(self, *, shown: Money, now: Money):
        super().__init__(
            f"The amount to capture is now {format_money(now)}, not the {format_money(shown)} shown. "
            "Nothing was charged; check the new amount and confirm it."
        )
        self.now = now


def _check_shown(*, shown: Money | None, now: Money) -> None:
    """What is captured equals what the pharmacist last saw on the button (when the form said)."""
    if shown is not None and shown != now:
        raise CaptureChanged(shown=shown, now=now)


def _counselling_offer(*, order: Order, by) -> dict:
    """A new prescription comes with the offer to counsel (issue 25): a message from the pharmacy
    in the patient's account, or, for a guest order, the approval email's invitation to call.
    What the approval email says about it (``counselling`` in its details)."""
    message = counselling_offer_post(order=order, by=by)
    return {"counselling": "message" if message is not None else "phone"}


def approval_capture(
    *, order: Order, lines: list[OrderLine], approved_packages: dict[int, int]
) -> Money:
    """The amount approving with these packs captures, from ``cart.calculations`` (through
    ``order_recalculate``): the preview the pharmacist confirms and the capture use this one function.
    Packs outside 0..ordered are the caller's to refuse; here they only count as given."""
    changed = {
        line.pk: approved_packages[line.pk]
        for line in lines
        if approved_packages.get(line.pk, line.packages) != line.packages
    }
    if not changed:
        return order.total
    recalculated = order_recalculate(order=order, lines=lines, packages=changed)
    return capped(amount=recalculated.total, authorised=order.total)


def prescription_approve(
    *,
    order: Order,
    by,
    note: str = "",
    submission_key=None,
    refill_checked: bool = False,
    shown_capture: Money | None = None,
) -> PrescriptionReview:
    """Approve as ordered: capture the whole hold and send the order to the dispensary.

    ``refill_checked`` is passed only by ``refill_approve``, after the refill checks passed;
    ``shown_capture`` is the amount the pharmacist's button named (refused if it differs)."""
    _require(by, "approve_prescription", "approve a prescription order")
    if not refill_checked:
        _refuse_unchecked_refill(order)
    with transaction.atomic():
        order, existing = _lock_for_review(order, submission_key)
        if existing is not None:
            return existing
        _check_shown(shown=shown_capture, now=order.total)
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
        # A refill continues a prescription the patient was counselled on; a new one is offered it.
        details = {} if refill_checked else _counselling_offer(order=order, by=by)
        order_email(order=order, kind=EmailKind.PRESCRIPTION_APPROVED, details=details)
    return review


def prescription_approve_with_changes(
    *,
    order: Order,
    by,
    approved_packages: dict[int, int],
    note: str,
    submission_key=None,
    shown_capture: Money | None = None,
) -> PrescriptionReview:
    """Approve less than was ordered: lines cut to what is prescribed (0 removes a line).

    Only the reduced total is captured; Stripe releases the rest of the hold. The order lines
    then show the approved packages; what was ordered stays in the review's ``changes``.
    Shipping stays as the customer agreed it.
    """
    _require(by, "approve_prescription", "approve a prescription order")
    _refuse_unchecked_refill(order)
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
                raise ReviewError(
                    f"{line}: approve between 0 and {line.packages} packages (what was ordered)."
                )
            if approved:
                kept += 1
            if approved != line.packages:
                changes.append((line, approved))
        if not changes:
            raise ReviewError("Nothing was changed. Use “Approve” to approve the order as ordered.")
        if not kept:
            raise ReviewError(
                "Every line was removed. Use “Do not approve” to reject the order instead."
            )

        ordered_total = order.total
        capture = approval_capture(order=order, lines=lines, approved_packages=approved_packages)
        _check_shown(shown=shown_capture, now=capture)
        # Every figure of the changed order (lines, discount, shipping, tax, total) from the
        # calculation module, with the code and tax rate the order was placed with.
        recalculated = order_recalculate(
            order=order, lines=lines, packages={line.pk: approved for line, approved in changes}
        )
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
                    "approved_line_total": str(
                        recalculated.line(line.pk).line_total.amount if approved else 0
                    ),
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
            PackageTier.objects.filter(pk=tier_id, stock__isnull=False).update(
                stock=F("stock") + packages
            )

        fields = order_snapshot_fields(recalculated)
        for name in ("subtotal", "savings", "discount", "shipping", "tax", "total"):
            setattr(order, name, fields[name])
        order.save(
            update_fields=[
                "subtotal",
                "savings",
                "discount",
                "shipping",
                "tax",
                "total",
                "updated_at",
            ]
        )
        summary = "; ".join(
            f"{c['item']}: {c['ordered_packages']} → {c['approved_packages']}" for c in record
        )
        OrderEvent.objects.create(
            order=order,
            kind=OrderEvent.Kind.NOTE,
            note=f"Approved with changes ({summary}); total {ordered_total} → {order.total}. {note.strip()}",
            by=by,
        )
        if returned:
            OrderEvent.objects.create(
                order=order,
                kind=OrderEvent.Kind.STOCK,
                note="Stock of removed packages returned.",
                by=by,
            )
        try:
            order = order_capture_payment(order=order, amount=capture, by=by)
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
            details={
                "note": note.strip(),
                "ordered_total": ordered_total,
                "approved_total": order.amount_captured,
                **_counselling_offer(order=order, by=by),  # never a refill (refused above)
            },
        )
    return review


def prescription_reject(
    *, order: Order, by, reason: str, submission_key=None
) -> PrescriptionReview:
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


def prescription_request_information(
    *, order: Order, by, message: str, submission_key=None
) -> PrescriptionReview:
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
        OrderEvent.objects.create(
            order=order,
            kind=OrderEvent.Kind.NOTE,
            note=f"More information requested: {message}",
            by=by,
        )
        order_email(
            order=order,
            kind=EmailKind.INFORMATION_REQUESTED,
            event=review.pk,
            details={"message": message},
        )
    return review


# --- Periodic work --------------------------------------------------------------------------


def prescriptions_lapse_expired(*, now: datetime | None = None) -> int:
    """Cancel review orders whose card hold is older than Stripe keeps it; tell the customer.

    Capturing such a hold would fail anyway; canceling releases it explicitly (an intent Stripe
    already canceled is fine) and gives the stock back. Returns how many orders were canceled.
    """
    cutoff = (now or timezone.now()) - hold_validity()
    candidates = with_authorised_at(
        Order.objects.filter(
            status=OrderStatus.AWAITING_REVIEW, payment_status=PaymentStatus.AUTHORIZED
        )
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
                    order=order,
                    action=ReviewAction.AUTHORISATION_EXPIRED,
                    note=LAPSE_NOTE,
                    ordered_total=ordered_total,
                )
                order_email(
                    order=order,
                    kind=EmailKind.PRESCRIPTION_REJECTED,
                    details={"reason": LAPSE_CUSTOMER_REASON},
                )
        except (gateway.PaymentGatewayError, OrderError):
            logger.exception("Could not lapse the expired card hold of order %s", order_id)
            continue
        lapsed += 1
    return lapsed
