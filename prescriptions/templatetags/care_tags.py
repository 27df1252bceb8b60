"""Template tags for pages other apps render: the account's transfers and renewals, and the
renewal of one prescription on file (its detail page is rendered by the refill views)."""

from __future__ import annotations

from django import template

from ..care_states import RENEWAL_OPEN, TRANSFER_OPEN
from ..models import RenewalRequest, TransferRequest

register = template.Library()


@register.simple_tag
def care_requests(user) -> dict:
    """The patient's open transfers and renewals, and those closed in the last 5 (two queries)."""
    if user is None or not user.is_authenticated:
        return {"transfers": [], "renewals": []}
    transfers = list(TransferRequest.objects.filter(user=user).order_by("-created_at")[:10])
    renewals = list(
        RenewalRequest.objects.filter(prescription__user=user)
        .select_related("prescription")
        .order_by("-created_at")[:10]
    )
    return {
        "transfers": [t for t in transfers if t.status in TRANSFER_OPEN]
        + [t for t in transfers if t.status not in TRANSFER_OPEN][:5],
        "renewals": [r for r in renewals if r.status in RENEWAL_OPEN]
        + [r for r in renewals if r.status not in RENEWAL_OPEN][:5],
    }


@register.simple_tag
def renewal_of_record(record) -> RenewalRequest | None:
    """The latest renewal request of a prescription on file (one query), or None."""
    return RenewalRequest.objects.filter(prescription=record).order_by("-created_at", "-pk").first()
