"""``{% prescription_review order as review %}``: the review in plain words for the order page;
``{% review_queue_count as waiting %}``: the staff header's count of orders waiting for review."""

from django import template

from orders.models import Order
from orders.state import OrderStatus
from prescriptions.queue import is_pharmacist, review_state

register = template.Library()


@register.simple_tag
def prescription_review(order):
    if order is None or not (order.has_prescription_items or order.reviews.exists()):
        return None
    return {
        "state": review_state(order=order, reviews=list(order.reviews.all())),
        "prescriptions": list(order.prescriptions.all()),
    }


@register.simple_tag(takes_context=True)
def review_queue_count(context) -> int | None:
    """Orders waiting for a pharmacist, for a user who may review them; None for anyone else.

    Customers and visitors cost no query (pharmacists are staff); a pharmacist costs the group
    check (cached on the user for the request) and one COUNT."""
    user = getattr(context.get("request"), "user", None) or context.get("user")
    if user is None or not getattr(user, "is_staff", False) or not is_pharmacist(user):
        return None
    return Order.objects.filter(status=OrderStatus.AWAITING_REVIEW).count()
