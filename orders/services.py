"""Checkout and payment workflows.

Two rules shape everything here:

* The database decides what an order contains and costs; Stripe decides whether it is paid.
  ``order_place`` re-prices the cart from the catalog (posted amounts are never read) and
  ``order_sync_payment`` is the one place that moves an order according to the PaymentIntent
  *as Stripe reports it now*, so webhooks, the return page and the reconciliation task can all
  call it, twice or in any order, and reach the same result.
* No network call while a half-written order exists. The order, its lines, the stock taken and
  the first event are written in one transaction; the PaymentIntent is created after commit with
  an idempotency key derived from the order. If Stripe fails, the finished order is canceled (its
  stock given back) and the customer still has their cart.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from djmoney.money import Money

from cart.models import Cart, CartLine
from cart.pricing import cart_summary
from cart.services import cart_clear
from catalog.models import PackageTier
from catalog.pricing import round_money

from notifications.models import EmailKind
from notifications.services import email_queue

from pharmacy.permissions import require_permission

from . import stripe_gateway as gateway
from .models import Order, OrderEvent, OrderLine, OrderNumber, OrderRefund, ShippingMethod
from .state import CANCELABLE_STATUSES, TRANSITION_TABLES, OrderStatus, PaymentStatus

logger = logging.getLogger(__name__)

EXPRESS_SURCHARGE = Decimal("15.00")
ORDER_LINK_SALT = "orders.order-link"
ORDER_LINK_MAX_AGE = timedelta(days=90)


class OrderError(Exception):
    """A request about an order that cannot be carried out; ``message`` is fit to show."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidTransition(OrderError):
    pass


@dataclass(frozen=True)
class ShippingAddress:
    name: str
    line1: str
    city: str
    state: str
    zip_code: str
    line2: str = ""


@dataclass(frozen=True)
class PlacedOrder:
    order: Order
    client_secret: str


# --- Money ----------------------------------------------------------------------------------


def to_minor(amount: Money) -> int:
    return int((amount.amount * 100).to_integral_value(rounding=ROUND_HALF_UP))


def from_minor(value: int, currency: str = "USD") -> Money:
    return Money((Decimal(value) / 100).quantize(Decimal("0.01")), currency)


def shipping_cost(*, standard: Money, method: str) -> Money:
    """Standard is the cart's own rate (flat, or free over the threshold); express adds $15."""
    if method == ShippingMethod.EXPRESS:
        return round_money(Money(standard.amount + EXPRESS_SURCHARGE, standard.currency))
    return standard


# --- Links to an order ----------------------------------------------------------------------


def order_access_token(order: Order) -> str:
    return signing.TimestampSigner(salt=ORDER_LINK_SALT).sign(str(order.id))


def order_token_is_valid(*, order: Order, token: str) -> bool:
    try:
        value = signing.TimestampSigner(salt=ORDER_LINK_SALT).unsign(token, max_age=ORDER_LINK_MAX_AGE)
    except signing.BadSignature:
        return False
    return value == str(order.id)


def order_link(order: Order) -> str:
    """The order page, reachable without signing in (guests) through a signed token."""
    return f"{reverse('orders:detail', kwargs={'number': order.number})}?t={order_access_token(order)}"


# --- Status moves: the one place ------------------------------------------------------------


def order_transition(*, order: Order, to: str, by=None, note: str = "", field: str = "status") -> OrderEvent:
    """Move ``order.status`` (or ``order.payment_status`` with ``field="payment_status"``).

    Refuses any move missing from the tables in ``orders.state`` and records the move as an
    ``OrderEvent``. The caller holds the order row locked.
    """
    table = TRANSITION_TABLES[field]
    current = getattr(order, field)
    if to not in table.get(current, frozenset()):
        label = "payment" if field == "payment_status" else "order"
        raise InvalidTransition(f"The {label} cannot go from {current} to {to}.")
    setattr(order, field, to)
    order.save(update_fields=[field, "updated_at"])
    kind = OrderEvent.Kind.PAYMENT if field == "payment_status" else OrderEvent.Kind.STATUS
    event = OrderEvent.objects.create(
        order=order, kind=kind, from_status=current, to_status=to, note=note, by=_user_or_none(by)
    )
    if field == "payment_status" and to == PaymentStatus.CAPTURED:
        # Issue #16: a refill counts only when the money is taken, in this very transaction, once.
        from .prescription_records import refills_count_on_capture

        refills_count_on_capture(order=order, by=_user_or_none(by))
    for email_kind in TRANSITION_EMAILS.get((field, to), ()):
        # Queued on commit and deduplicated per (order, kind): a move replayed by a second
        # webhook sends nothing twice, and a rolled-back move sends nothing at all.
        email_queue(order=order, kind=email_kind)
    return event


#: Which emails a move sends. "Order received" follows the card hold, never the checkout; a
#: payment Stripe reports as captured before we saw the hold still sends it (deduplicated).
TRANSITION_EMAILS: dict[tuple[str, str], tuple[str, ...]] = {
    ("payment_status", PaymentStatus.AUTHORIZED): (EmailKind.ORDER_RECEIVED, EmailKind.STAFF_NEW_ORDER),
    ("payment_status", PaymentStatus.CAPTURED): (
        EmailKind.ORDER_RECEIVED,
        EmailKind.STAFF_NEW_ORDER,
        EmailKind.PAYMENT_CAPTURED,
    ),
}


def _user_or_none(user):
    return user if user is not None and getattr(user, "is_authenticated", False) else None


def _event(order: Order, kind: str, note: str, by=None) -> OrderEvent:
    return OrderEvent.objects.create(order=order, kind=kind, note=note, by=_user_or_none(by))


def _locked(order_id) -> Order:
    return Order.objects.select_for_update().get(pk=order_id)


# --- Placing the order ----------------------------------------------------------------------


def order_place(
    *, cart: Cart | None, email: str, address: ShippingAddress, shipping_method: str, user=None, prescription=None
) -> PlacedOrder:
    """Turn the cart into an order awaiting payment and open a card hold for its total.

    Everything charged is computed here from the catalog; nothing the browser posted about
    prices is an input. Raises ``OrderError`` with a customer-facing message; the cart is kept.
    """
    if cart is None or cart.pk is None:
        raise OrderError("Your cart is empty.")
    if shipping_method not in ShippingMethod.values:
        raise OrderError("Please choose a shipping method.")
    _abandon_unpaid_attempts(cart=cart)

    with transaction.atomic():
        Cart.objects.select_for_update().filter(pk=cart.pk).first()  # one checkout per cart at a time
        tier_ids = list(CartLine.objects.filter(cart_id=cart.pk).values_list("tier_id", flat=True))
        tiers = {t.pk: t for t in PackageTier.objects.select_for_update().filter(pk__in=tier_ids).order_by("pk")}
        summary = cart_summary(cart)  # read after the locks: the prices and stock we hold
        if not summary.can_checkout:
            raise OrderError(_checkout_refusal(summary))
        # Refill lines (issue #16) are verified below against the prescription on file; they need no new prescription.
        rx_needed = summary.has_prescription_items and _lines_needing_prescription(cart, summary.available_lines)
        if rx_needed and prescription is None:
            # Checked here as well as in the checkout form: no prescription order without a
            # patient and, for each item, a prescription copy or the prescriber's details.
            raise OrderError("Please give the patient's details and a prescription for each prescription item.")
        lines = summary.available_lines
        for line in lines:
            tier = tiers[line.tier_id]
            if tier.stock is not None and tier.stock < line.packages:
                left = "none are" if tier.stock == 0 else f"only {tier.stock} are"
                raise OrderError(f"{line.description}: {left} left in stock. Please update your cart.")
        reserved = {}
        for line in lines:
            if tiers[line.tier_id].stock is not None:
                PackageTier.objects.filter(pk=line.tier_id).update(stock=F("stock") - line.packages)
                reserved[line.tier_id] = line.packages

        shipping = shipping_cost(standard=summary.shipping, method=shipping_method)
        total = round_money(Money(summary.subtotal.amount + shipping.amount, summary.subtotal.currency))
        order = Order.objects.create(
            number=OrderNumber.objects.create().number,
            user=_user_or_none(user),
            cart=cart,
            email=email,
            ship_name=address.name,
            ship_line1=address.line1,
            ship_line2=address.line2,
            ship_city=address.city,
            ship_state=address.state,
            ship_zip=address.zip_code,
            shipping_method=shipping_method,
            subtotal=summary.subtotal,
            savings=summary.savings,
            shipping=shipping,
            total=total,
            amount_captured=Money(0, total.currency),
            amount_refunded=Money(0, total.currency),
            has_prescription_items=summary.has_prescription_items,
            stock_reserved=bool(reserved),
        )
        OrderLine.objects.bulk_create(
            OrderLine(
                order=order,
                tier_id=line.tier_id,
                product_name=line.product_name,
                strength=line.strength,
                pack_size=line.pack_size,
                packages=line.packages,
                unit_price=line.unit_price,
                per_pill=line.per_pill,
                list_price=line.list_price,
                line_total=line.line_total,
                requires_prescription=line.requires_prescription,
                reserved_packages=reserved.get(line.tier_id, 0),
            )
            for line in lines
        )
        if order.has_prescription_items:
            from .prescription_records import refills_verify_for_order  # issue #16 hook

            refills_verify_for_order(order=order, cart=cart, user=user, add_patient=prescription is None)
        if order.has_prescription_items and prescription is not None:
            # Patient and prescriptions commit with the order or not at all (orders.prescriptions).
            from .prescriptions import prescriptions_record

            prescriptions_record(order=order, intake=prescription)
        _event(order, OrderEvent.Kind.PLACED, f"Placed for {total}; awaiting payment.", by=user)

    try:
        intent = gateway.create_payment_intent(
            amount_minor=to_minor(order.total),
            currency=str(order.total.currency),
            order_id=str(order.id),
            order_number=order.number,
            idempotency_key=f"order-{order.id}-pi",
        )
    except gateway.PaymentGatewayError as exc:
        logger.warning("PaymentIntent for order %s failed: %s", order.number, exc)
        order_cancel(order=order, by=None, reason="The card payment could not be started.")
        raise OrderError(f"{exc.user_message} Your cart has been kept.") from exc
    Order.objects.filter(pk=order.pk).update(stripe_payment_intent_id=intent.id)
    order.stripe_payment_intent_id = intent.id
    return PlacedOrder(order=order, client_secret=intent.client_secret)


def _lines_needing_prescription(cart, lines) -> bool:
    from .prescription_records import checkout_lines_needing_prescription  # issue #16 hook

    return any(line.requires_prescription for line in checkout_lines_needing_prescription(cart=cart, lines=lines))


def _checkout_refusal(summary) -> str:
    if summary.problems:
        return summary.problems[0]
    if summary.unavailable_lines:
        line = summary.unavailable_lines[0]
        return f"{line.description}: {line.notice.split(':')[0].lower()}. Please update your cart."
    return "Your cart is empty."


def _abandon_unpaid_attempts(*, cart: Cart) -> None:
    """A new checkout from the same cart replaces an earlier unpaid one (a declined card, a
    closed tab), so its stock is given back instead of being held twice. An earlier attempt that
    did get paid in the meantime is kept, and it empties the cart."""
    for order_id in Order.objects.awaiting_payment().filter(cart=cart).values_list("pk", flat=True):
        try:
            order = order_sync_payment(order_id=order_id)
            if order.status == OrderStatus.PENDING_PAYMENT and order.payment_status in (
                PaymentStatus.PENDING,
                PaymentStatus.FAILED,
            ):
                order_cancel(order=order, by=None, reason="Replaced by a new checkout attempt.")
        except (gateway.PaymentGatewayError, OrderError):
            # Left for the expiry task; the new attempt must not fail because of the old one.
            logger.warning("Could not abandon unpaid order %s", order_id, exc_info=True)


# --- Following the payment ------------------------------------------------------------------


def order_sync_payment(*, order_id) -> Order | None:
    """Bring an order in line with its PaymentIntent as Stripe reports it now. Idempotent."""
    with transaction.atomic():
        order = Order.objects.select_for_update().filter(pk=order_id).first()
        if order is None or not order.stripe_payment_intent_id:
            return order
        intent = gateway.retrieve_payment_intent(order.stripe_payment_intent_id)
        _apply_intent(order, intent)
    return order


def _apply_intent(order: Order, intent: gateway.PaymentIntentState) -> None:
    P, S = PaymentStatus, OrderStatus
    if intent.status == "requires_capture":
        if order.status == S.CANCELED:
            # Authorised after we gave up on it (expired, replaced): release the hold at once.
            if order.payment_status in (P.PENDING, P.FAILED, P.AUTHORIZED):
                gateway.cancel_payment_intent(
                    payment_intent_id=intent.id, idempotency_key=f"order-{order.id}-cancel"
                )
                order_transition(order=order, to=P.CANCELED, field="payment_status", note="Hold released: order already canceled.")
            return
        if order.payment_status in (P.PENDING, P.FAILED):
            order.payment_error = ""
            order_transition(order=order, to=P.AUTHORIZED, field="payment_status", note=f"Card hold of {from_minor(intent.amount_capturable or intent.amount)}.")
            cart_clear(cart=order.cart)
        if order.payment_status == P.AUTHORIZED and order.status == S.PENDING_PAYMENT:
            if order.has_prescription_items:
                order_transition(order=order, to=S.AWAITING_REVIEW, note="Waiting for a pharmacist to check the prescription.")
            else:
                captured = gateway.capture_payment_intent(
                    payment_intent_id=intent.id, amount_minor=None, idempotency_key=f"order-{order.id}-capture"
                )
                _apply_intent(order, captured)
    elif intent.status == "succeeded":
        if order.payment_status in (P.PENDING, P.FAILED, P.AUTHORIZED):
            if order.payment_status != P.AUTHORIZED:
                cart_clear(cart=order.cart)
            order.amount_captured = from_minor(intent.captured_minor, str(order.total.currency))
            order.save(update_fields=["amount_captured", "updated_at"])
            order_transition(order=order, to=P.CAPTURED, field="payment_status", note=f"Captured {order.amount_captured}.")
        if order.status == S.PENDING_PAYMENT:
            to = S.AWAITING_REVIEW if order.has_prescription_items else S.READY_TO_SHIP
            order_transition(order=order, to=to, note="Payment received.")
        refunded = from_minor(
            intent.refunded_minor(captured_minor=to_minor(order.amount_captured)), str(order.total.currency)
        )
        if refunded.amount > order.amount_refunded.amount and order.payment_status in (P.CAPTURED, P.PARTIALLY_REFUNDED):
            order.amount_refunded = refunded
            order.save(update_fields=["amount_refunded", "updated_at"])
            to = P.REFUNDED if refunded.amount >= order.amount_captured.amount else P.PARTIALLY_REFUNDED
            order_transition(order=order, to=to, field="payment_status", note=f"Stripe reports {refunded} refunded in total.")
    elif intent.status == "canceled":
        if order.payment_status in (P.PENDING, P.FAILED, P.AUTHORIZED):
            order_transition(order=order, to=P.CANCELED, field="payment_status", note="Card hold canceled.")
        if order.status in CANCELABLE_STATUSES:
            order_transition(order=order, to=S.CANCELED, note="The payment was canceled.")
        _release_stock(order)
    elif intent.status == "requires_payment_method" and intent.last_error_message:
        if order.payment_status == P.PENDING:
            order.payment_error = intent.last_error_message[:500]
            order.save(update_fields=["payment_error", "updated_at"])
            order_transition(order=order, to=P.FAILED, field="payment_status", note=intent.last_error_message)


def _release_stock(order: Order, by=None) -> None:
    """Give tracked stock back, once."""
    if not order.stock_reserved:
        return
    lines = order.lines.filter(tier__isnull=False, reserved_packages__gt=0)
    for tier_id, packages in lines.values_list("tier_id", "reserved_packages"):
        # A tier no longer tracked has no count to give back to.
        PackageTier.objects.filter(pk=tier_id, stock__isnull=False).update(stock=F("stock") + packages)
    order.lines.update(reserved_packages=0)
    order.stock_reserved = False
    order.save(update_fields=["stock_reserved", "updated_at"])
    _event(order, OrderEvent.Kind.STOCK, "Reserved stock returned.", by=by)


# --- Staff and pharmacist actions -----------------------------------------------------------


def order_capture_payment(*, order: Order, amount: Money | None = None, by) -> Order:
    """Take the authorised money (all, or less after a pharmacist removed an item).

    Called when the pharmacist approves a prescription order; moves it from awaiting review to
    ready to ship. Capturing an order already captured changes nothing.
    """
    require_permission(by, "orders.capture_payment", action="capture a payment")
    with transaction.atomic():
        order = _locked(order.pk)
        if order.payment_status in (PaymentStatus.CAPTURED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED):
            return order
        if order.payment_status != PaymentStatus.AUTHORIZED:
            raise OrderError("Only an authorised payment can be captured.")
        if amount is not None and not (0 < amount.amount <= order.total.amount):
            raise OrderError(f"Capture between $0.01 and {order.total}.")
        intent = gateway.capture_payment_intent(
            payment_intent_id=order.stripe_payment_intent_id,
            amount_minor=None if amount is None else to_minor(amount),
            idempotency_key=f"order-{order.id}-capture",
        )
        order.amount_captured = from_minor(
            intent.amount_received or to_minor(amount or order.total), str(order.total.currency)
        )
        order.save(update_fields=["amount_captured", "updated_at"])
        order_transition(order=order, to=PaymentStatus.CAPTURED, field="payment_status", by=by, note=f"Captured {order.amount_captured}.")
        if order.status == OrderStatus.AWAITING_REVIEW:
            order_transition(order=order, to=OrderStatus.READY_TO_SHIP, by=by, note="Approved by the pharmacist.")
    return order


def order_cancel(*, order: Order, by, reason: str) -> Order:
    """Cancel before shipping: release the card hold (or refund what was taken) and the stock."""
    require_permission(by, "orders.cancel_order", action="cancel an order")
    with transaction.atomic():
        order = _locked(order.pk)
        if order.status == OrderStatus.CANCELED:
            return order
        if order.status not in CANCELABLE_STATUSES:
            raise OrderError("This order has already shipped and can no longer be canceled.")
        P = PaymentStatus
        if order.payment_status in (P.CAPTURED, P.PARTIALLY_REFUNDED) and order.amount_refundable.amount > 0:
            _refund_locked(order=order, amount=order.amount_refundable, reason=reason, by=by)
        elif order.payment_status in (P.PENDING, P.FAILED, P.AUTHORIZED):
            if order.stripe_payment_intent_id:
                gateway.cancel_payment_intent(
                    payment_intent_id=order.stripe_payment_intent_id, idempotency_key=f"order-{order.id}-cancel"
                )
            order_transition(order=order, to=P.CANCELED, field="payment_status", by=by, note=reason)
        order_transition(order=order, to=OrderStatus.CANCELED, by=by, note=reason)
        _release_stock(order, by=by)
    return order


def order_refund(*, order: Order, amount: Money | None, reason: str, by) -> Order:
    """Refund part or all of a captured payment through Stripe (staff only)."""
    require_permission(by, "orders.refund_order", action="refund an order")
    if not (reason or "").strip():
        raise OrderError("Please give a reason for the refund.")
    with transaction.atomic():
        order = _locked(order.pk)
        if order.payment_status not in (PaymentStatus.CAPTURED, PaymentStatus.PARTIALLY_REFUNDED):
            raise OrderError("Only a captured payment can be refunded.")
        amount = order.amount_refundable if amount is None else amount
        if not (0 < amount.amount <= order.amount_refundable.amount):
            raise OrderError(f"Refund between $0.01 and {order.amount_refundable}.")
        _refund_locked(order=order, amount=amount, reason=reason.strip(), by=by)
    return order


def _refund_locked(*, order: Order, amount: Money, reason: str, by) -> None:
    refund_id, refunded_minor = gateway.refund_payment_intent(
        payment_intent_id=order.stripe_payment_intent_id,
        amount_minor=to_minor(amount),
        order_id=str(order.id),
        # Same order, same refunded-so-far, same amount: a retry of this very refund.
        idempotency_key=f"order-{order.id}-refund-{to_minor(order.amount_refunded)}-{to_minor(amount)}",
    )
    if OrderRefund.objects.filter(stripe_refund_id=refund_id).exists():
        return
    refunded = from_minor(refunded_minor, str(order.total.currency))
    OrderRefund.objects.create(order=order, stripe_refund_id=refund_id, amount=refunded, reason=reason, by=_user_or_none(by))
    email_queue(
        order=order,
        kind=EmailKind.REFUND_ISSUED,
        context_extra={"amount": refunded, "reason": reason},
        event_id=refund_id,
    )
    order.amount_refunded = order.amount_refunded + refunded
    order.save(update_fields=["amount_refunded", "updated_at"])
    to = PaymentStatus.REFUNDED if order.amount_refunded.amount >= order.amount_captured.amount else PaymentStatus.PARTIALLY_REFUNDED
    order_transition(order=order, to=to, field="payment_status", by=by, note=f"Refunded {refunded}: {reason}")


# --- Periodic work --------------------------------------------------------------------------


def orders_reconcile_pending(*, older_than: timedelta = timedelta(minutes=2)) -> int:
    """Re-check orders still awaiting payment, in case a webhook was lost. Returns how many changed."""
    cutoff = timezone.now() - older_than
    changed = 0
    ids = Order.objects.awaiting_payment().filter(created_at__lte=cutoff, stripe_payment_intent_id__isnull=False)
    for order_id, before in ids.values_list("pk", "payment_status"):
        try:
            order = order_sync_payment(order_id=order_id)
        except gateway.PaymentGatewayError:
            logger.exception("Reconciling order %s failed", order_id)
            continue
        if order.status != OrderStatus.PENDING_PAYMENT or order.payment_status != before:
            changed += 1
    return changed


def orders_expire_unpaid(*, now=None) -> int:
    """Cancel orders left unpaid past ``ORDER_UNPAID_EXPIRY_MINUTES``: release hold and stock."""
    cutoff = (now or timezone.now()) - timedelta(minutes=settings.ORDER_UNPAID_EXPIRY_MINUTES)
    expired = 0
    for order_id in Order.objects.awaiting_payment().filter(created_at__lte=cutoff).values_list("pk", flat=True):
        try:
            order = order_sync_payment(order_id=order_id)  # paid at the last minute? then keep it
            if order.status == OrderStatus.PENDING_PAYMENT and order.payment_status in (
                PaymentStatus.PENDING,
                PaymentStatus.FAILED,
            ):
                order_cancel(order=order, by=None, reason="Not paid in time; the order expired.")
                expired += 1
        except (gateway.PaymentGatewayError, OrderError):
            logger.exception("Expiring order %s failed", order_id)
    return expired
