"""An order's life: written for the checkout, its payment followed, captured, canceled, refunded.

Two rules shape everything here:

* The database decides what an order contains and costs; Stripe decides whether it is paid.
  ``checkout.placement.order_place`` re-prices the cart from the catalog (posted amounts are
  never read) and calls ``order_create`` here; ``order_sync_payment`` is the one place that
  moves an order according to the PaymentIntent *as Stripe reports it now*, so webhooks, the
  return page and the reconciliation task can all call it, twice or in any order, and reach the
  same result.
* No network call while a half-written order exists. The order, its lines and the first event
  are written in one transaction; the PaymentIntent is created after commit with an idempotency
  key derived from the order. If Stripe fails, the attempt is canceled and the customer still has
  their cart.
* Stock is taken when the card is authorised, not when the order is placed (docs/security.md,
  "Unpaid checkouts cannot hold stock"): an unpaid checkout holds nothing, so no script or
  abandoned tab can make a pack unavailable. The last pack goes to the first authorisation; a later one is canceled and
  its hold released.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from djmoney.money import Money

from cart import calculations
from cart.services import cart_remove_ordered
from catalog.models import PackageTier
from discounts.services import discount_redeem, discount_release
from notifications.models import EmailKind
from payments import stripe_gateway as gateway
from pharmacy.permissions import require_permission

from .emails import order_email, order_emails_on_transition
from .errors import OrderError
from .links import LinkState, order_access_token, order_link, order_link_check, order_token_is_valid  # noqa: F401  (the public names)
from .models import (
    Order,
    OrderEvent,
    OrderLine,
    OrderNumber,
    OrderRefund,
    StripeEvent,
)
from .prescription_step import prescription_step
from .state import CANCELABLE_STATUSES, TRANSITION_TABLES, OrderStatus, PaymentStatus
from .totals import line_snapshot_fields, order_recalculate, order_snapshot_fields

logger = logging.getLogger(__name__)

EXPRESS_SURCHARGE = calculations.EXPRESS_SURCHARGE
DISCOUNT_USED_UP = "The discount code was used up by another order while this one was paid; the card hold was released."


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


@dataclass(frozen=True)
class SavedCardPayment:
    """Pay with a card the customer saved for this purpose, without them present (auto-refill):
    the hold is asked for off-session when the order is placed."""

    customer_id: str
    payment_method_id: str


#: ``OrderError.code`` when a saved card asked for the customer's authentication.
AUTHENTICATION_REQUIRED = "authentication_required"


# --- Money ----------------------------------------------------------------------------------


def to_minor(amount: Money) -> int:
    return int((amount.amount * 100).to_integral_value(rounding=ROUND_HALF_UP))


def from_minor(value: int, currency: str = "USD") -> Money:
    return Money((Decimal(value) / 100).quantize(Decimal("0.01")), currency)


# --- Links to an order ----------------------------------------------------------------------


# --- Status moves: the one place ------------------------------------------------------------


def order_transition(
    *, order: Order, to: str, by=None, note: str = "", field: str = "status"
) -> OrderEvent:
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
        # A refill counts only when the money is taken, in this very transaction, once.
        prescription_step().payment_captured(order=order, by=_user_or_none(by))
    # Queued on commit and deduplicated per (order, kind): a move replayed by a second webhook
    # sends nothing twice, and a rolled-back move sends nothing at all.
    order_emails_on_transition(order=order, field=field, to=to)
    return event


def _user_or_none(user):
    return user if user is not None and getattr(user, "is_authenticated", False) else None


def _event(order: Order, kind: str, note: str, by=None) -> OrderEvent:
    return OrderEvent.objects.create(order=order, kind=kind, note=note, by=_user_or_none(by))


def _locked(order_id) -> Order:
    return Order.objects.select_for_update().get(pk=order_id)


# --- An order for the checkout (``checkout.placement`` decides when) -------------------------

#: PaymentIntent states in which the customer's browser can still (re)try the card.
_PAYABLE_INTENT_STATES = frozenset(
    {"requires_payment_method", "requires_confirmation", "requires_action"}
)


class PaymentAttemptDeclined(Exception):
    """The reused attempt's card was declined meanwhile (now marked failed): start afresh."""


def order_create(
    *, cart, summary, lines, email, address, shipping_method, totals, user, prescription
) -> Order:
    """Write the order, its lines (snapshots of ``totals``) and the prescription step's records
    in the caller's transaction, which holds the cart locked; no network call here."""
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
        **order_snapshot_fields(totals),
        amount_captured=Money(0, totals.total.currency),
        amount_refunded=Money(0, totals.total.currency),
        has_prescription_items=summary.has_prescription_items,
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
            **line_snapshot_fields(totals.line(line.line_id)),
            legal_class=line.legal_class,
            product_id=line.product_id,
            requires_prescription=line.requires_prescription,
        )
        for line in lines
    )
    # The patient, the prescriptions and refills commit with the order or not at all; the step
    # refuses a prescription order without them (orders.prescription_step).
    prescription_step().order_placed(order=order, cart=cart, user=user, intake=prescription)
    _event(order, OrderEvent.Kind.PLACED, f"Placed for {totals.total}; awaiting payment.", by=user)
    return order


def order_open_payment(*, order_id, saved_card: SavedCardPayment | None = None) -> PlacedOrder:
    """The order's one PaymentIntent: created once (under the order's lock, with a key derived
    from the order), then handed out again to a repeated submit. Raises
    ``PaymentAttemptDeclined`` when the reused intent's card was declined meanwhile."""
    with transaction.atomic():
        order = _locked(order_id)
        if order.status != OrderStatus.PENDING_PAYMENT:
            raise OrderError(
                "This checkout attempt has ended. Please try again; your cart has been kept."
            )
        if order.stripe_payment_intent_id:
            intent = gateway.retrieve_payment_intent(order.stripe_payment_intent_id)
            declined = intent.status == "requires_payment_method" and bool(
                intent.last_error_message
            )
            if declined:
                _apply_intent(
                    order, intent
                )  # marks the payment failed (committed): not reused again
            elif intent.status not in _PAYABLE_INTENT_STATES:
                raise OrderError(
                    f"Your payment for order {order.number} is already being processed; "
                    "its page and your email will confirm it shortly."
                )
        else:
            declined = False
            intent = _payment_intent_create(order, saved_card)
            order.stripe_payment_intent_id = intent.id
            order.save(update_fields=["stripe_payment_intent_id", "updated_at"])
            if saved_card is not None:
                _apply_intent(order, intent)  # authorised now, under the order's lock
    if declined:
        raise PaymentAttemptDeclined
    return PlacedOrder(order=order, client_secret=intent.client_secret)


def _payment_intent_create(
    order: Order, saved_card: SavedCardPayment | None
) -> gateway.PaymentIntentState:
    fields = {
        "amount_minor": to_minor(order.total),
        "currency": str(order.total.currency),
        "order_id": str(order.id),
        "order_number": order.number,
        "idempotency_key": f"order-{order.id}-pi",
    }
    if saved_card is None:
        return gateway.create_payment_intent(**fields)
    return gateway.create_off_session_payment_intent(
        **fields,
        customer_id=saved_card.customer_id,
        payment_method_id=saved_card.payment_method_id,
    )


def order_abandon(*, order_id, reason: str) -> None:
    """End an unpaid attempt without waiting on Stripe: the order is canceled here (it holds no
    stock), and its card hold, if any, is released after commit by ``order_release_payment_hold``
    (queued; the reconciliation job retries it if the queue or Stripe is down). If the customer
    authorised it in another tab meanwhile, that hold is released the same way."""
    with transaction.atomic():
        order = _locked(order_id)
        if order.status != OrderStatus.PENDING_PAYMENT or order.payment_status not in (
            PaymentStatus.PENDING,
            PaymentStatus.FAILED,
        ):
            return
        if order.stripe_payment_intent_id:
            transaction.on_commit(lambda: _queue_release(order.pk))
        else:  # no card was ever asked for: nothing to release
            order_transition(
                order=order, to=PaymentStatus.CANCELED, field="payment_status", note=reason
            )
        order_transition(order=order, to=OrderStatus.CANCELED, note=reason)


def _queue_release(order_id) -> None:
    from pharmacy.celery import publish_bounded

    from .tasks import release_payment_hold

    try:  # bounded like every hand-off from a request (CELERY_PUBLISH_TIMEOUT, one try)
        publish_bounded(release_payment_hold, str(order_id))
    except Exception:  # the reconciliation job finds the open hold later
        logger.warning(
            "Could not queue releasing the card hold of order %s", order_id, exc_info=True
        )


def order_release_payment_hold(*, order_id) -> Order | None:
    """Release the card hold (or refund the money) of an order canceled while its payment was still
    open. Idempotent: an order whose payment is settled is left as it is."""
    with transaction.atomic():
        order = Order.objects.select_for_update().filter(pk=order_id).first()
        if (
            order is None
            or order.status != OrderStatus.CANCELED
            or not order.stripe_payment_intent_id
        ):
            return order
        P = PaymentStatus
        if order.payment_status in (P.PENDING, P.FAILED, P.AUTHORIZED):
            note = "Hold released: order canceled."
            try:
                gateway.cancel_payment_intent(
                    payment_intent_id=order.stripe_payment_intent_id,
                    idempotency_key=f"order-{order.id}-cancel",
                )
            except gateway.PaymentGatewayError as exc:
                if exc.code != "resource_missing":
                    raise
                note = "Stripe no longer knows this payment; nothing to release."
            order_transition(order=order, to=P.CANCELED, field="payment_status", note=note)
        elif (
            order.payment_status in (P.CAPTURED, P.PARTIALLY_REFUNDED)
            and order.amount_refundable.amount > 0
        ):
            _refund_locked(
                order=order,
                amount=order.amount_refundable,
                reason="Order canceled before it could be fulfilled.",
                by=None,
            )
    return order


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


def _remember_card(order: Order, intent: gateway.PaymentIntentState) -> None:
    """Keep the card's brand and last four digits on the order, once: the receipt names them."""
    if intent.card_last4 and not order.card_last4:
        order.card_brand, order.card_last4 = intent.card_brand, intent.card_last4
        order.save(update_fields=["card_brand", "card_last4", "updated_at"])


def _apply_intent(order: Order, intent: gateway.PaymentIntentState) -> None:
    P, S = PaymentStatus, OrderStatus
    if intent.status in ("requires_capture", "succeeded") and order.status != S.CANCELED:
        _remember_card(order, intent)
    if intent.status == "requires_capture":
        if order.status == S.CANCELED:
            # Authorised after we gave up on it (expired, replaced): release the hold at once.
            if order.payment_status in (P.PENDING, P.FAILED, P.AUTHORIZED):
                gateway.cancel_payment_intent(
                    payment_intent_id=intent.id, idempotency_key=f"order-{order.id}-cancel"
                )
                order_transition(
                    order=order,
                    to=P.CANCELED,
                    field="payment_status",
                    note="Hold released: order already canceled.",
                )
            return
        if order.payment_status in (P.PENDING, P.FAILED):
            if not _take_stock(order):
                _cancel_sold_out(order)
                return
            if not discount_redeem(
                order=order
            ):  # the code's last use went to another order meanwhile
                _cancel_after_authorisation(order, note=DISCOUNT_USED_UP)
                return
            order.payment_error = ""
            order_transition(
                order=order,
                to=P.AUTHORIZED,
                field="payment_status",
                note=f"Card hold of {from_minor(intent.amount_capturable or intent.amount)}.",
            )
            _cart_remove_ordered(order)
        if order.payment_status == P.AUTHORIZED and order.status == S.PENDING_PAYMENT:
            if order.has_prescription_items:
                order_transition(
                    order=order,
                    to=S.AWAITING_REVIEW,
                    note="Waiting for a pharmacist to check the prescription.",
                )
            else:
                captured = gateway.capture_payment_intent(
                    payment_intent_id=intent.id,
                    amount_minor=None,
                    idempotency_key=f"order-{order.id}-capture",
                )
                _apply_intent(order, captured)
    elif intent.status == "succeeded":
        if order.payment_status in (P.PENDING, P.FAILED, P.AUTHORIZED):
            sold_out = False
            discount_redeem(order=order, force=True)  # already charged with it: the discount stands
            if order.payment_status != P.AUTHORIZED:
                # Captured before we saw the hold: the stock is taken now, or the money goes back.
                sold_out = order.status == S.PENDING_PAYMENT and not _take_stock(order)
                if not sold_out:
                    _cart_remove_ordered(order)
            order.amount_captured = from_minor(intent.captured_minor, str(order.total.currency))
            order.save(update_fields=["amount_captured", "updated_at"])
            order_transition(
                order=order,
                to=P.CAPTURED,
                field="payment_status",
                note=f"Captured {order.amount_captured}.",
            )
            if sold_out:
                _cancel_sold_out(order)
                return
        if order.status == S.PENDING_PAYMENT:
            to = S.AWAITING_REVIEW if order.has_prescription_items else S.READY_TO_SHIP
            order_transition(order=order, to=to, note="Payment received.")
        refunded = from_minor(
            intent.refunded_minor(captured_minor=to_minor(order.amount_captured)),
            str(order.total.currency),
        )
        if refunded.amount > order.amount_refunded.amount and order.payment_status in (
            P.CAPTURED,
            P.PARTIALLY_REFUNDED,
        ):
            order.amount_refunded = refunded
            order.save(update_fields=["amount_refunded", "updated_at"])
            to = (
                P.REFUNDED
                if refunded.amount >= order.amount_captured.amount
                else P.PARTIALLY_REFUNDED
            )
            order_transition(
                order=order,
                to=to,
                field="payment_status",
                note=f"Stripe reports {refunded} refunded in total.",
            )
    elif intent.status == "canceled":
        if order.payment_status in (P.PENDING, P.FAILED, P.AUTHORIZED):
            order_transition(
                order=order, to=P.CANCELED, field="payment_status", note="Card hold canceled."
            )
        if order.status in CANCELABLE_STATUSES:
            order_transition(order=order, to=S.CANCELED, note="The payment was canceled.")
        discount_release(order=order)
        _release_stock(order)
    elif (
        intent.status == "requires_payment_method"
        and intent.last_error_message
        and order.payment_status == P.PENDING
    ):
        order.payment_error = intent.last_error_message[:500]
        order.save(update_fields=["payment_error", "updated_at"])
        order_transition(
            order=order, to=P.FAILED, field="payment_status", note=intent.last_error_message
        )


def _cart_remove_ordered(order: Order) -> None:
    """The paid lines leave the cart; packs added since the checkout page stay for the next order."""
    cart_remove_ordered(
        cart=order.cart,
        ordered=order.lines.filter(tier__isnull=False).values_list("tier_id", "packages"),
    )


#: The customer-facing reason an authorised order could not be kept (shown on the order page).
SOLD_OUT_NOTE = (
    "Sorry: the last packs sold out while your payment was being confirmed. "
    "Nothing will be charged; the hold on your card is being released."
)


def _take_stock(order: Order) -> bool:
    """Take the order's tracked stock now that its card is authorised; all lines or none.

    Each line is a conditional ``UPDATE … WHERE stock >= packages`` (tiers in id order, so two
    orders never wait on each other crosswise): of two customers authorising the last pack, the
    first to get here wins and the other gets ``False``. Untracked tiers take nothing."""
    if order.stock_reserved:
        return True
    taken = {}
    try:
        with transaction.atomic():
            for line in sorted(
                order.lines.filter(tier__isnull=False), key=lambda line: line.tier_id
            ):
                updated = PackageTier.objects.filter(
                    pk=line.tier_id, stock__gte=line.packages
                ).update(stock=F("stock") - line.packages)
                if updated:
                    taken[line.pk] = line.packages
                elif PackageTier.objects.filter(pk=line.tier_id, stock__isnull=False).exists():
                    raise _SoldOut
    except _SoldOut:
        return False
    for line_id, packages in taken.items():
        OrderLine.objects.filter(pk=line_id).update(reserved_packages=packages)
    if taken:
        order.stock_reserved = True
        order.save(update_fields=["stock_reserved", "updated_at"])
        _event(order, OrderEvent.Kind.STOCK, "Stock taken: the card is authorised.")
    return True


class _SoldOut(Exception):
    pass


def _cancel_sold_out(order: Order) -> None:
    _cancel_after_authorisation(order, note=SOLD_OUT_NOTE)


def _cancel_after_authorisation(order: Order, *, note: str) -> None:
    """The card was authorised but the order cannot be kept (the stock or the discount code's
    last use went to another order): cancel, give back any stock taken, and release the hold (or
    refund) after commit, so no Stripe call waits under the stock locks. ``note`` is shown to
    the customer on the order page."""
    _release_stock(order)
    order_transition(order=order, to=OrderStatus.CANCELED, note=note)
    transaction.on_commit(lambda: _queue_release(order.pk))


#: Why an authorised order was canceled by the shop, in the customer's words (order page).
CANCELED_AFTER_AUTHORISATION_NOTES = (SOLD_OUT_NOTE, DISCOUNT_USED_UP)


def _release_stock(order: Order, by=None) -> None:
    """Give tracked stock back, once."""
    if not order.stock_reserved:
        return
    lines = order.lines.filter(tier__isnull=False, reserved_packages__gt=0)
    for tier_id, packages in lines.values_list("tier_id", "reserved_packages"):
        # A tier no longer tracked has no count to give back to.
        PackageTier.objects.filter(pk=tier_id, stock__isnull=False).update(
            stock=F("stock") + packages
        )
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
        if order.payment_status in (
            PaymentStatus.CAPTURED,
            PaymentStatus.PARTIALLY_REFUNDED,
            PaymentStatus.REFUNDED,
        ):
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
        _remember_card(order, intent)
        order_transition(
            order=order,
            to=PaymentStatus.CAPTURED,
            field="payment_status",
            by=by,
            note=f"Captured {order.amount_captured}.",
        )
        if order.status == OrderStatus.AWAITING_REVIEW:
            order_transition(
                order=order, to=OrderStatus.READY_TO_SHIP, by=by, note="Approved by the pharmacist."
            )
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
        if (
            order.payment_status in (P.CAPTURED, P.PARTIALLY_REFUNDED)
            and order.amount_refundable.amount > 0
        ):
            _refund_locked(order=order, amount=order.amount_refundable, reason=reason, by=by)
        elif order.payment_status in (P.PENDING, P.FAILED, P.AUTHORIZED):
            if order.stripe_payment_intent_id:
                try:
                    gateway.cancel_payment_intent(
                        payment_intent_id=order.stripe_payment_intent_id,
                        idempotency_key=f"order-{order.id}-cancel",
                    )
                except gateway.PaymentGatewayError as exc:
                    # Stripe forgot the intent (key or account changed): there is no hold left to
                    # release, and the order must not stay open because of it.
                    if exc.code != "resource_missing":
                        raise
            order_transition(order=order, to=P.CANCELED, field="payment_status", by=by, note=reason)
        order_transition(order=order, to=OrderStatus.CANCELED, by=by, note=reason)
        _release_stock(order, by=by)
        discount_release(order=order)
    return order


def order_cancel_by_customer(*, order: Order, user, reason: str) -> Order:
    """The customer cancels their own order before the pharmacy has taken the money: the card
    hold is released, nothing is charged. Checked on the locked order, so a pharmacist's
    approval (which captures) and this cancel cannot both happen; once captured it is refused."""
    with transaction.atomic():
        order = _locked(order.pk)
        if order.user_id is None or order.user_id != getattr(user, "pk", None):
            raise OrderError("No such order.")
        if order.status == OrderStatus.CANCELED:
            return order
        if order.status not in (OrderStatus.PENDING_PAYMENT, OrderStatus.AWAITING_REVIEW) or (
            order.payment_status not in (PaymentStatus.PENDING, PaymentStatus.AUTHORIZED)
        ):
            raise OrderError(
                "This order has already been approved and charged; please contact us to return it."
            )
        if order.stripe_payment_intent_id:
            try:
                gateway.cancel_payment_intent(
                    payment_intent_id=order.stripe_payment_intent_id,
                    idempotency_key=f"order-{order.id}-cancel",
                )
            except gateway.PaymentGatewayError as exc:
                if exc.code != "resource_missing":
                    raise OrderError(exc.user_message) from exc
        order_transition(
            order=order, to=PaymentStatus.CANCELED, field="payment_status", by=user, note=reason
        )
        order_transition(order=order, to=OrderStatus.CANCELED, by=user, note=reason)
        _release_stock(order, by=user)
        discount_release(order=order)
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
    OrderRefund.objects.create(
        order=order,
        stripe_refund_id=refund_id,
        amount=refunded,
        reason=reason,
        by=_user_or_none(by),
    )
    # Prorated over what the order charged (cart.calculations.refund_split), so the email can say
    # how much of the refund is sales tax given back.
    split = calculations.refund_split(
        totals=order_recalculate(order=order, lines=order.lines.all()), amount=refunded
    )
    order.amount_refunded = calculations.add(
        (order.amount_refunded, refunded), str(order.total.currency)
    )
    order.save(update_fields=["amount_refunded", "updated_at"])
    # After the total refunded is updated: the email's context is built now, not at send time.
    order_email(
        order=order,
        kind=EmailKind.REFUND_ISSUED,
        event=refund_id,
        details={
            "amount": refunded,
            "reason": reason,
            "tax_part": split.tax if split.tax.amount else "",
        },
    )
    to = (
        PaymentStatus.REFUNDED
        if order.amount_refunded.amount >= order.amount_captured.amount
        else PaymentStatus.PARTIALLY_REFUNDED
    )
    order_transition(
        order=order, to=to, field="payment_status", by=by, note=f"Refunded {refunded}: {reason}"
    )


# --- Periodic work --------------------------------------------------------------------------


FORGOTTEN_INTENT_REASON = (
    "Stripe no longer knows this payment (the account or key changed); the order expired."
)


def orders_reconcile_pending(*, older_than: timedelta = timedelta(minutes=2)) -> int:
    """Re-check orders still awaiting payment, in case a webhook was lost. Returns how many changed.

    Also finishes what could not be done at the time: a canceled order whose card hold is still
    open (Stripe or the queue was down) has it released, and an order whose PaymentIntent Stripe
    no longer knows is expired instead of waiting forever."""
    cutoff = timezone.now() - older_than
    changed = 0
    ids = Order.objects.awaiting_payment().filter(
        created_at__lte=cutoff, stripe_payment_intent_id__isnull=False
    )
    for order_id, before in ids.values_list("pk", "payment_status"):
        try:
            order = _sync_or_expire_forgotten(order_id=order_id)
        except (gateway.PaymentGatewayError, OrderError):
            logger.exception("Reconciling order %s failed", order_id)
            continue
        if order.status != OrderStatus.PENDING_PAYMENT or order.payment_status != before:
            changed += 1
    open_holds = Order.objects.filter(
        status=OrderStatus.CANCELED,
        payment_status__in=(PaymentStatus.PENDING, PaymentStatus.FAILED, PaymentStatus.AUTHORIZED),
        stripe_payment_intent_id__isnull=False,
        updated_at__lte=cutoff,
    )
    for order_id in open_holds.values_list("pk", flat=True):
        try:
            order_release_payment_hold(order_id=order_id)
            changed += 1
        except (gateway.PaymentGatewayError, OrderError):
            logger.exception("Releasing the card hold of order %s failed", order_id)
    return changed


def _sync_or_expire_forgotten(*, order_id) -> Order:
    try:
        return order_sync_payment(order_id=order_id)
    except gateway.PaymentGatewayError as exc:
        if exc.code != "resource_missing":
            raise
        logger.warning("Stripe does not know the PaymentIntent of order %s; expiring it", order_id)
        return order_cancel(
            order=Order.objects.get(pk=order_id), by=None, reason=FORGOTTEN_INTENT_REASON
        )


def orders_expire_unpaid(*, now=None) -> int:
    """Cancel orders left unpaid past ``ORDER_UNPAID_EXPIRY_MINUTES`` and release their card hold.

    Unpaid orders hold no stock (it is taken at authorisation); expiring them closes the
    PaymentIntent so an old tab cannot pay for an order nobody is watching."""
    cutoff = (now or timezone.now()) - timedelta(minutes=settings.ORDER_UNPAID_EXPIRY_MINUTES)
    expired = 0
    for order_id in (
        Order.objects.awaiting_payment().filter(created_at__lte=cutoff).values_list("pk", flat=True)
    ):
        try:
            order = _sync_or_expire_forgotten(
                order_id=order_id
            )  # paid at the last minute? then keep it
            if order.status == OrderStatus.CANCELED:
                expired += 1
            elif order.status == OrderStatus.PENDING_PAYMENT and order.payment_status in (
                PaymentStatus.PENDING,
                PaymentStatus.FAILED,
            ):
                order_cancel(order=order, by=None, reason="Not paid in time; the order expired.")
                expired += 1
        except (gateway.PaymentGatewayError, OrderError):
            logger.exception("Expiring order %s failed", order_id)
    return expired


# --- A guest order kept in an account ---------------------------------------------------------


@transaction.atomic
def order_by_number(number) -> Order | None:
    """The order with this number, or None (for pages of other apps that look one up by its link)."""
    return Order.objects.filter(number=number).first()


def orders_of_customer(*, user):
    """A customer's orders, newest first, with their shipment, in one query whatever their number."""
    return (
        Order.objects.filter(user=user)
        .select_related("shipment")
        .order_by("-created_at", "-number")
    )


@transaction.atomic
def order_attach_to_customer(*, order: Order, user) -> Order:
    """Put a guest order in ``user``'s account; the caller has proved the user owns its email.

    One transaction under the order's row lock, so two claims at once attach it once. An order
    already in this account is left as it is; one in another account is never moved
    (``OrderError``). The prescriptions on file recorded when a pharmacist approved it (kept
    without an account while it was a guest order) move with it, so the customer can refill them.
    """
    locked = _locked(order.pk)
    if locked.user_id == user.pk:
        return locked
    if locked.user_id is not None:
        raise OrderError(f"Order {locked.number} is already in another account.")
    if locked.email.strip().lower() != user.email.strip().lower():
        raise OrderError(f"Order {locked.number} was placed with another email address.")
    locked.user = user
    locked.save(update_fields=["user", "updated_at"])
    _event(
        locked,
        OrderEvent.Kind.NOTE,
        "The customer added this guest order to their account.",
        by=user,
    )
    prescription_step().order_claimed(order=locked, user=user)
    return locked


# --- Stripe events (recorded by ``orders.webhooks``, processed here in the task) ---------------

#: The events that can move an order's payment; the others are recorded and acknowledged.
HANDLED_EVENTS = frozenset(
    {
        "payment_intent.succeeded",
        "payment_intent.amount_capturable_updated",
        "payment_intent.payment_failed",
        "payment_intent.canceled",
        "charge.refunded",
    }
)


def stripe_event_process(*, record_id: int) -> bool:
    """Act on a recorded event (the task's body); True when done. Raises when Stripe failed."""
    record = StripeEvent.objects.filter(pk=record_id).first()
    if record is None or record.processed:
        return True
    try:
        if record.type in HANDLED_EVENTS:
            order = _order_for_event(record.payload.get("data", {}).get("object", {}))
            if order is not None:
                order_sync_payment(order_id=order.pk)
    except Exception as exc:
        logger.exception("Stripe event %s failed", record.event_id)
        StripeEvent.objects.filter(pk=record.pk).update(error=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    StripeEvent.objects.filter(pk=record.pk).update(
        processed=True, error="", processed_at=timezone.now()
    )
    return True


def _order_for_event(obj: dict) -> Order | None:
    order_id = (obj.get("metadata") or {}).get("order_id")
    if order_id:
        order = Order.objects.filter(pk=order_id).first() if _is_uuid(order_id) else None
        if order is not None:
            return order
    intent_id = (
        obj.get("id") if obj.get("object") == "payment_intent" else obj.get("payment_intent")
    )
    if isinstance(intent_id, dict):
        intent_id = intent_id.get("id")
    if not isinstance(intent_id, str):
        return None
    return Order.objects.filter(stripe_payment_intent_id=intent_id).first() if intent_id else None


def _is_uuid(value) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True
