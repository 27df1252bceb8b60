"""The refill / record panel on the pharmacist's order page (issue #16), as one include."""
from django import template
from django.utils import timezone

from orders import prescription_records as records
from orders.prescription_forms import OneTimeForm
from orders.refill_forms import RecordOnFileForm

register = template.Library()


@register.inclusion_tag("orders/refills/_review_panel.html", takes_context=True)
def refill_review_panel(context, order, lines):
    """For a refill: the checks and the two decisions. For a new prescription: approve and keep on file."""
    if not any(line.requires_prescription for line in lines):
        return {}
    new, refills = records.review_queue_split([order], today=timezone.localdate())
    panel = {"request": context.get("request"), "order": order, "csrf_token": context.get("csrf_token")}
    if refills:
        panel.update(refill=refills[0], decision_form=OneTimeForm(), refuse_form=OneTimeForm())
    else:
        form = RecordOnFileForm(order=order, lines=lines, refill_line_ids=records.refill_line_ids(order))
        panel.update(record_form=form if form.lines else None)
    return panel
