"""Who reviews, what waits for them, and the review in the customer's words.

Who counts as a pharmacist; the review queue's selector (the oldest card hold first); when a hold
lapses; and the review state the order page shows. The pharmacist's decisions are in
``prescriptions.decisions``; refill orders' rows in ``prescriptions.refill_review``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Prefetch, QuerySet

from orders.holds import hold_validity, with_authorised_at
from orders.models import Order
from orders.state import OrderStatus

from .models import Prescription, PrescriptionReview, ReviewAction

PHARMACIST_GROUP = "pharmacist"
LAPSE_CUSTOMER_REASON = (
    "We could not finish checking your prescription within 7 days, which is as long as your bank "
    "holds a card payment for us. The hold has lapsed, so we have canceled the order and nothing "
    "was charged. You are welcome to order again, or call us and we will help."
)


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


def review_queue() -> QuerySet:
    """Orders waiting for a pharmacist, the oldest card hold first, with everything the page shows."""
    return (
        with_authorised_at(Order.objects.filter(status=OrderStatus.AWAITING_REVIEW))
        .select_related("patient", "user")
        .prefetch_related(
            "lines",
            Prefetch(
                "prescriptions", queryset=Prescription.objects.order_by("created_at", "description")
            ),
            Prefetch("reviews", queryset=PrescriptionReview.objects.select_related("by")),
        )
        .order_by("authorised_at", "created_at")
    )


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
    latest = reviews[-1] if reviews else None
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
        return ReviewState(
            "expired", "Canceled: card authorisation expired before review", LAPSE_CUSTOMER_REASON
        )
    return None
