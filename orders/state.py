"""Order and payment statuses and the moves allowed between them: data, not code.

``orders.services.order_transition`` is the only function that changes a status; it consults
these tables, so a move that is not listed here cannot happen anywhere in the shop. Payment
status is kept apart from order status (as Saleor does): the money and the parcel move on
different clocks, e.g. a prescription order is *authorised* but waits for a pharmacist.
"""

from __future__ import annotations

from django.db import models


class OrderStatus(models.TextChoices):
    PENDING_PAYMENT = "pending_payment", "Awaiting payment"
    AWAITING_REVIEW = "awaiting_review", "Awaiting pharmacist review"
    READY_TO_SHIP = "ready_to_ship", "Being prepared for shipping"
    SHIPPED = "shipped", "Shipped"
    DELIVERED = "delivered", "Delivered"
    CANCELED = "canceled", "Canceled"


class PaymentStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    AUTHORIZED = "authorized", "Authorised (card hold, not charged yet)"
    CAPTURED = "captured", "Paid"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled (hold released)"
    REFUNDED = "refunded", "Refunded"
    PARTIALLY_REFUNDED = "partially_refunded", "Partially refunded"


S, P = OrderStatus, PaymentStatus

ORDER_TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING_PAYMENT: frozenset({S.AWAITING_REVIEW, S.READY_TO_SHIP, S.CANCELED}),
    S.AWAITING_REVIEW: frozenset({S.READY_TO_SHIP, S.CANCELED}),
    S.READY_TO_SHIP: frozenset({S.SHIPPED, S.CANCELED}),
    S.SHIPPED: frozenset({S.DELIVERED}),
    S.DELIVERED: frozenset(),
    S.CANCELED: frozenset(),
}

PAYMENT_TRANSITIONS: dict[str, frozenset[str]] = {
    # pending -> captured directly: Stripe may report the capture before we saw the hold.
    P.PENDING: frozenset({P.AUTHORIZED, P.CAPTURED, P.FAILED, P.CANCELED}),
    # A declined card can be retried on the same PaymentIntent.
    P.FAILED: frozenset({P.AUTHORIZED, P.CAPTURED, P.CANCELED}),
    P.AUTHORIZED: frozenset({P.CAPTURED, P.CANCELED}),
    P.CAPTURED: frozenset({P.PARTIALLY_REFUNDED, P.REFUNDED}),
    P.PARTIALLY_REFUNDED: frozenset({P.PARTIALLY_REFUNDED, P.REFUNDED}),
    P.REFUNDED: frozenset(),
    P.CANCELED: frozenset(),
}

TRANSITION_TABLES: dict[str, dict[str, frozenset[str]]] = {
    "status": ORDER_TRANSITIONS,
    "payment_status": PAYMENT_TRANSITIONS,
}

# Before these, the parcel has not left: the order may still be canceled.
CANCELABLE_STATUSES = frozenset(s for s, moves in ORDER_TRANSITIONS.items() if S.CANCELED in moves)
