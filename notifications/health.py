"""How the outbox is doing, for the admin index and the metrics endpoint (``pharmacy.metrics``).

One query on the (status, updated_at) index. "Unsent" is every row not yet delivered and not
given up on (queued or being sent); "failed" rows were given up on and wait for a person.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Min, Q
from django.utils import timezone

from .models import EmailStatus, OutboundEmail

UNSENT = (EmailStatus.QUEUED, EmailStatus.SENDING)


@dataclass(frozen=True)
class OutboxHealth:
    unsent: int
    failed: int
    #: Seconds since the oldest unsent email was queued (None: nothing waits).
    oldest_unsent_age: float | None


def outbox_health(*, now: datetime | None = None) -> OutboxHealth:
    now = now or timezone.now()
    counts = OutboundEmail.objects.filter(status__in=(*UNSENT, EmailStatus.FAILED)).aggregate(
        unsent=Count("pk", filter=Q(status__in=UNSENT)),
        failed=Count("pk", filter=Q(status=EmailStatus.FAILED)),
        oldest=Min("created_at", filter=Q(status__in=UNSENT)),
    )
    oldest = counts["oldest"]
    return OutboxHealth(
        unsent=counts["unsent"],
        failed=counts["failed"],
        oldest_unsent_age=None if oldest is None else max((now - oldest).total_seconds(), 0.0),
    )
