"""The refill decision on the pharmacist's order page (issues #16, #21), as one include."""

from django import template
from django.utils import timezone

from prescriptions import refill_review
from prescriptions.forms import OneTimeForm
from prescriptions.refill_forms import RefillRefuseForm

register = template.Library()


@register.inclusion_tag("prescriptions/refills/_review_panel.html", takes_context=True)
def refill_review_panel(context, order):
    """For a refill order: its checks and the two refill decisions (the page shows nothing else)."""
    _, refills = refill_review.review_queue_split([order], today=timezone.localdate())
    if not refills:
        return {}
    return {
        "request": context.get("request"),
        "order": order,
        "csrf_token": context.get("csrf_token"),
        "refill": refills[0],
        "decision_form": OneTimeForm(auto_id="refill-approve-%s"),
        "refuse_form": RefillRefuseForm(auto_id="refill-refuse-%s"),
    }
