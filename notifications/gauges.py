"""The outbox's numbers an operator watches (the admin index and ``/metrics`` read them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count, Min, Q
from django.utils import timezone

from .models import UNSENT_STATUSES, EmailStatus, OutboundEmail

__all__ = ["UNSENT_STATUSES", "OutboxHealth", "outbox_health"]


@dataclass(frozen=True)
class OutboxHealth:
    """What an operator watches: emails still to go, emails given up on, and the oldest waiting."""

    unsent: int
    failed: int
    oldest_unsent_age: timedelta | None


def outbox_health() -> OutboxHealth:
    """The outbox in one query, for the admin index, metrics and probes."""
    # Only the rows counted, through the (status, updated_at) index: the sent ones are nearly all.
    figures = OutboundEmail.objects.filter(
        status__in=(*UNSENT_STATUSES, EmailStatus.FAILED)
    ).aggregate(
        unsent=Count("pk", filter=Q(status__in=UNSENT_STATUSES)),
        failed=Count("pk", filter=Q(status=EmailStatus.FAILED)),
        oldest=Min("created_at", filter=Q(status__in=UNSENT_STATUSES)),
    )
    oldest = figures["oldest"]
    return OutboxHealth(
        unsent=figures["unsent"],
        failed=figures["failed"],
        oldest_unsent_age=max(timezone.now() - oldest, timedelta(0)) if oldest else None,
    )
