"""Placing an order: the cart as the customer confirmed it becomes an order and a card hold.

``order_place`` re-prices the cart from the catalog (posted amounts are never read), inside one
transaction that holds the cart row locked, and refuses when the figures differ from those the
page showed (``checkout.figures``). A repeated submit of the same cart gets the same order and
PaymentIntent back; a changed cart replaces the earlier unpaid attempt. The order itself is
written by ``orders.services.order_create``, and its PaymentIntent is opened after commit by
``orders.services.order_open_payment``: no network call while a half-written order exists.
"""

from __future__ import annotations

import logging

from django.db import transaction

from cart.models import Cart
from cart.pricing import cart_summary
from orders import services as orders
from orders.errors import OrderError
from orders.models import Order, ShippingMethod
from orders.services import PlacedOrder, SavedCardPayment, ShippingAddress
from orders.state import OrderStatus, PaymentStatus
from payments import stripe_gateway as gateway

from .figures import figures_check
from .pricing_inputs import order_pricing_inputs

logger = logging.getLogger(__name__)


def order_place(
    *,
    cart: Cart | None,
    email: str,
    address: ShippingAddress,
    shipping_method: str,
    user=None,
    prescription=None,
    shown_figures: str | None = None,
    saved_card: SavedCardPayment | None = None,
) -> PlacedOrder:
    """Turn the cart into an order awaiting payment and open a card hold for its total.

    Everything charged is computed here from the catalog; nothing the browser posted about
    prices is an input. ``shown_figures`` (``checkout_figures`` of the page the customer saw)
    must match the figures now, or ``CheckoutChanged`` says what moved and nothing is placed.

    Placing takes no stock: tracked stock is taken when the card is authorised
    (``order_sync_payment``), so an unpaid checkout cannot hold a pack. One pending order per
    cart: a repeated submit of the same cart returns the same order and PaymentIntent; a changed
    cart replaces the earlier unpaid attempt. Raises ``OrderError`` with a customer-facing
    message; the cart is kept.

    With ``saved_card`` the hold is asked for off-session and the order is authorised (or
    refused) before this returns: a declined card or one that wants the customer to
    authenticate ends the attempt (nothing held) and raises ``OrderError`` with its ``code``.
    """
    if cart is None or cart.pk is None:
        raise OrderError("Your cart is empty.")
    if shipping_method not in ShippingMethod.values:
        raise OrderError("Please choose a shipping method.")
    attempt = {
        "cart": cart,
        "email": email,
        "address": address,
        "shipping_method": shipping_method,
        "user": user,
        "prescription": prescription,
        "shown_figures": shown_figures,
        "saved_card": saved_card,
    }
    try:
        return _place_once(**attempt)
    except orders.PaymentAttemptDeclined:
        # The reused attempt's card was declined meanwhile (now marked failed): start afresh.
        return _place_once(**attempt)


def _place_once(
    *, cart, email, address, shipping_method, user, prescription, shown_figures, saved_card
) -> PlacedOrder:
    with transaction.atomic():
        # One placement per cart at a time: a double submit waits here, then finds the first's order.
        Cart.objects.select_for_update().filter(pk=cart.pk).first()
        # Every figure comes from cart.calculations, for this address's state and this email.
        summary = cart_summary(
            cart,
            method=shipping_method,
            **order_pricing_inputs(cart=cart, state=address.state, email=email),
        )
        if not summary.can_checkout:
            raise OrderError(_refusal(summary))
        if shown_figures is not None:
            figures_check(shown_figures=shown_figures, summary=summary)
        lines = summary.available_lines
        totals = summary.totals
        total = totals.total
        wanted = {
            "lines": sorted(
                (line.tier_id, line.packages, line.unit_price.amount) for line in lines
            ),
            "total": total.amount,
            "shipping_method": shipping_method,
            "email": email,
            "address": address,
            "user_id": user.pk if getattr(user, "is_authenticated", False) else None,
        }
        order, replaced = None, []
        for previous in (
            Order.objects.awaiting_payment().filter(cart=cart).prefetch_related("lines")
        ):
            # A prescription order carries the documents of its own submit: never reused.
            if (
                order is None
                and not summary.has_prescription_items
                and _same_attempt(previous, wanted)
            ):
                order = previous
            else:
                replaced.append(previous.pk)
        if order is None:
            order = orders.order_create(
                cart=cart,
                summary=summary,
                lines=lines,
                email=email,
                address=address,
                shipping_method=shipping_method,
                totals=totals,
                user=user,
                prescription=prescription,
            )
        fresh = order.stripe_payment_intent_id is None

    for order_id in replaced:
        orders.order_abandon(order_id=order_id, reason="Replaced by a new checkout attempt.")
    try:
        placed = orders.order_open_payment(order_id=order.pk, saved_card=saved_card)
    except gateway.PaymentGatewayError as exc:
        logger.warning("PaymentIntent for order %s failed: %s", order.number, exc)
        if fresh:
            # Nothing was taken and no card was asked for: the attempt simply ends; the cart stays.
            orders.order_abandon(order_id=order.pk, reason="The card payment could not be started.")
        code = exc.code if exc.declined else ""
        raise OrderError(f"{exc.user_message} Your cart has been kept.", code=code) from exc
    if saved_card is not None and placed.order.status == OrderStatus.CANCELED:
        # Authorised, then let go at once (the last pack sold meanwhile): the hold is released.
        raise OrderError(orders.SOLD_OUT_NOTE, code="order_canceled")
    if saved_card is not None and placed.order.payment_status != PaymentStatus.AUTHORIZED:
        # The saved card wants the customer (3-D Secure): nobody is there to answer, so the
        # attempt ends and its hold, if any, is released.
        orders.order_abandon(order_id=order.pk, reason="The saved card asked for authentication.")
        raise OrderError(
            "Your bank asked to confirm this payment with you.", code=orders.AUTHENTICATION_REQUIRED
        )
    return placed


def _same_attempt(order: Order, wanted: dict) -> bool:
    """Is this unpaid order exactly what the customer is submitting again?"""
    if order.payment_status != PaymentStatus.PENDING:
        return False  # a declined card starts over with a fresh attempt
    a = wanted["address"]
    return (
        sorted((line.tier_id, line.packages, line.unit_price.amount) for line in order.lines.all())
        == wanted["lines"]
        and order.total.amount == wanted["total"]
        and order.shipping_method == wanted["shipping_method"]
        and order.email == wanted["email"]
        and order.user_id == wanted["user_id"]
        and (
            order.ship_name,
            order.ship_line1,
            order.ship_line2,
            order.ship_city,
            order.ship_state,
            order.ship_zip,
        )
        == (a.name, a.line1, a.line2, a.city, a.state, a.zip_code)
    )


def _refusal(summary) -> str:
    if summary.problems:
        return summary.problems[0]
    if summary.unavailable_lines:
        line = summary.unavailable_lines[0]
        return f"{line.description}: {line.notice.split(':')[0].lower()}. Please update your cart."
    return "Your cart is empty."
