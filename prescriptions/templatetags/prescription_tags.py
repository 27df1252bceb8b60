"""``{% prescription_review order as review %}``: the review in plain words for the order page."""

from django import template

from prescriptions.queue import review_state

register = template.Library()


@register.simple_tag
def prescription_review(order):
    if order is None or not (order.has_prescription_items or order.reviews.exists()):
        return None
    return {
        "state": review_state(order=order, reviews=list(order.reviews.all())),
        "prescriptions": list(order.prescriptions.all()),
    }
