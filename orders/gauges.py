"""The orders app's numbers for staff and monitors: the review queue, card holds, Stripe events.

``pharmacy.metrics`` shows them on the admin index and exports them to Prometheus; this module
only counts. Four queries, each on an index (status, payment status, unprocessed events).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Min
from django.utils import timezone

from .emails import lapsing_holds
from .holds import with_authorised_at
from .models import Order, StripeEvent
from .state import OrderStatus


@dataclass(frozen=True)
class OrderGauges:
    review_queue_length: int
    #: Seconds since the oldest waiting order's card hold began (None: the queue is empty).
    review_oldest_age: float | None
    holds_lapsing: int
    stripe_events_unprocessed: int
    stripe_oldest_unprocessed_age: float | None


def _age(now: datetime, since: datetime | None) -> float | None:
    return None if since is None else max((now - since).total_seconds(), 0.0)


def order_gauges(*, now: datetime | None = None) -> OrderGauges:
    """The numbers now; a hold counts as lapsing within AUTHORISATION_WARNING_HOURS, as in the digest."""
    now = now or timezone.now()
    queue = with_authorised_at(Order.objects.filter(status=OrderStatus.AWAITING_REVIEW)).aggregate(
        length=Count("pk"), oldest=Min("authorised_at")
    )
    events = StripeEvent.objects.filter(processed=False).aggregate(
        length=Count("pk"), oldest=Min("received_at")
    )
    return OrderGauges(
        review_queue_length=queue["length"],
        review_oldest_age=_age(now, queue["oldest"]),
        holds_lapsing=lapsing_holds(now=now).count(),
        stripe_events_unprocessed=events["length"],
        stripe_oldest_unprocessed_age=_age(now, events["oldest"]),
    )
