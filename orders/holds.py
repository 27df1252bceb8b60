"""Card holds: how long Stripe keeps a manual-capture authorisation, and when each one began.

Prescription orders wait on a hold while the pharmacist reviews them; the staff digest and gauges
(``orders.emails``, ``orders.gauges``) and the review queue (``prescriptions.queue``) read it here.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import DateTimeField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from .models import OrderEvent
from .state import PaymentStatus


def hold_validity() -> timedelta:
    """How long Stripe keeps a manual-capture card hold (7 days)."""
    return timedelta(hours=getattr(settings, "STRIPE_AUTHORISATION_VALIDITY_HOURS", 7 * 24))


def with_authorised_at(queryset: QuerySet) -> QuerySet:
    """Annotate ``authorised_at``: when the card hold began (the payment -> authorized event).

    The order's creation stands in if the event is missing; it is earlier, so the time left
    errs on the short side.
    """
    event = OrderEvent.objects.filter(
        order=OuterRef("pk"), kind=OrderEvent.Kind.PAYMENT, to_status=PaymentStatus.AUTHORIZED
    ).order_by("-created_at")
    return queryset.annotate(
        authorised_at=Coalesce(
            Subquery(event.values("created_at")[:1]), "created_at", output_field=DateTimeField()
        )
    )
