"""The statuses of a transfer in and of a renewal request, and the steps between them.

Data in one place: the services move a request only along these tables (``care_steps.step``),
the pages read the labels from here, and the models' constraints name the same statuses. A
final status has no step out of it, so a received transfer or a renewed prescription is never
reopened: the patient starts a new request instead.
"""

from __future__ import annotations

from django.db import models


class TransferStatus(models.TextChoices):
    REQUESTED = "requested", "Requested"
    CONTACTED = "contacted", "Other pharmacy contacted"
    RECEIVED = "received", "Received, on file"
    REFUSED = "refused", "Refused"


class RenewalStatus(models.TextChoices):
    REQUESTED = "requested", "Requested"
    SENT = "sent", "Sent to prescriber"
    RENEWED = "renewed", "Renewed, on file"
    DENIED = "denied", "Denied"


#: status → the statuses it may move to. Absent: final.
TRANSFER_STEPS: dict[str, frozenset[str]] = {
    TransferStatus.REQUESTED: frozenset({TransferStatus.CONTACTED, TransferStatus.REFUSED}),
    TransferStatus.CONTACTED: frozenset({TransferStatus.RECEIVED, TransferStatus.REFUSED}),
}
RENEWAL_STEPS: dict[str, frozenset[str]] = {
    RenewalStatus.REQUESTED: frozenset({RenewalStatus.SENT, RenewalStatus.DENIED}),
    RenewalStatus.SENT: frozenset({RenewalStatus.RENEWED, RenewalStatus.DENIED}),
}

#: Statuses still waiting for the pharmacy (the queues' first part; one open renewal at a time).
TRANSFER_OPEN = (TransferStatus.REQUESTED, TransferStatus.CONTACTED)
RENEWAL_OPEN = (RenewalStatus.REQUESTED, RenewalStatus.SENT)

#: Steps that need a reason the patient reads.
TRANSFER_NEEDS_REASON = frozenset({TransferStatus.REFUSED})
RENEWAL_NEEDS_REASON = frozenset({RenewalStatus.DENIED})


def may_step(steps: dict[str, frozenset[str]], current: str, target: str) -> bool:
    return target in steps.get(current, frozenset())
