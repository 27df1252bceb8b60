"""Prescriptions' models (moving here from ``orders``, issue 23).

Continuing care (issue 25): a prescription transferred in from another pharmacy, and a renewal
asked of the prescriber when a prescription on file has no refills left or has expired. Each
moves along the steps in ``prescriptions.care_states``; each step leaves an event row that can
never be edited (who, when, from, to, why). The database refuses what must never be stored: a
refused transfer or denied renewal without its reason, a received transfer or renewed
prescription without the prescription on file it became, two open renewals of one prescription.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from .care_states import (
    RENEWAL_OPEN,
    RenewalStatus,
    TransferStatus,
)


class _AppendOnly(models.Model):
    """An event row: written once, never changed or deleted (the audit trail of a request)."""

    from_status = models.CharField(max_length=12, blank=True)
    to_status = models.CharField(max_length=12)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    #: The statuses the rows name (set by each subclass), for their labels.
    statuses: type[models.TextChoices]

    class Meta:
        abstract = True
        ordering = ("created_at", "id")

    @property
    def to_status_label(self) -> str:
        return self.statuses(self.to_status).label

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValueError("The history of a request cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("The history of a request cannot be deleted.")


class TransferRequest(models.Model):
    """A patient asks us to take over a prescription held by another pharmacy."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="transfer_requests",
    )
    patient_name = models.CharField(max_length=150)
    patient_date_of_birth = models.DateField()
    pharmacy_name = models.CharField("pharmacy name", max_length=150)
    pharmacy_phone = models.CharField("pharmacy phone", max_length=30)
    pharmacy_rx_number = models.CharField("prescription number", max_length=40, blank=True)
    # Chosen from the catalog's prescription-only strengths; the names are kept as chosen.
    dosage = models.ForeignKey("catalog.Dosage", on_delete=models.PROTECT, related_name="+")
    medicine = models.CharField(max_length=120)
    strength = models.CharField(max_length=40)
    prescriber_name = models.CharField(max_length=150)
    prescriber_phone = models.CharField(max_length=30, blank=True)
    status = models.CharField(
        max_length=12, choices=TransferStatus.choices, default=TransferStatus.REQUESTED
    )
    reason = models.TextField("reason refused", blank=True)
    prescription = models.OneToOneField(
        "orders.PrescriptionOnFile",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="transfer",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("created_at", "id")
        permissions = [
            ("manage_transfer", "Can contact, receive or refuse a prescription transfer"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=TransferStatus.values), name="rx_transfer_status_known"
            ),
            models.CheckConstraint(
                condition=~Q(status=TransferStatus.REFUSED) | ~Q(reason=""),
                name="rx_transfer_refused_has_reason",
            ),
            models.CheckConstraint(
                condition=Q(status=TransferStatus.RECEIVED, prescription__isnull=False)
                | (~Q(status=TransferStatus.RECEIVED) & Q(prescription__isnull=True)),
                name="rx_transfer_received_is_on_file",
            ),
        ]
        indexes = [models.Index(fields=("status", "created_at"))]

    def __str__(self) -> str:
        return f"Transfer {self.pk}: {self.medicine} {self.strength} from {self.pharmacy_name}"


class TransferEvent(_AppendOnly):
    transfer = models.ForeignKey(TransferRequest, on_delete=models.PROTECT, related_name="events")
    statuses = TransferStatus

    class Meta(_AppendOnly.Meta):
        pass


class RenewalRequest(models.Model):
    """We ask the prescriber to renew a prescription on file whose refills are used up or
    which has expired; once renewed, the new prescription is a new record on file."""

    prescription = models.ForeignKey(
        "orders.PrescriptionOnFile", on_delete=models.PROTECT, related_name="renewal_requests"
    )
    # Who asked: the patient, a pharmacist, or None for the shop itself (auto-refill).
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(
        max_length=12, choices=RenewalStatus.choices, default=RenewalStatus.REQUESTED
    )
    reason = models.TextField("reason denied", blank=True)
    renewed_prescription = models.OneToOneField(
        "orders.PrescriptionOnFile",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="renewal_of",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("created_at", "id")
        permissions = [
            ("manage_renewal", "Can send, record or deny a prescription renewal"),
        ]
        constraints = [
            # One open request per prescription: a second click, the auto-refill job and the
            # patient at once all end on the same row.
            models.UniqueConstraint(
                fields=("prescription",),
                condition=Q(status__in=RENEWAL_OPEN),
                name="rx_renewal_one_open_per_prescription",
            ),
            models.CheckConstraint(
                condition=Q(status__in=RenewalStatus.values), name="rx_renewal_status_known"
            ),
            models.CheckConstraint(
                condition=~Q(status=RenewalStatus.DENIED) | ~Q(reason=""),
                name="rx_renewal_denied_has_reason",
            ),
            models.CheckConstraint(
                condition=Q(status=RenewalStatus.RENEWED, renewed_prescription__isnull=False)
                | (~Q(status=RenewalStatus.RENEWED) & Q(renewed_prescription__isnull=True)),
                name="rx_renewal_renewed_is_on_file",
            ),
            models.CheckConstraint(
                condition=~Q(renewed_prescription=models.F("prescription")),
                name="rx_renewal_new_record",
            ),
        ]
        indexes = [models.Index(fields=("status", "created_at"))]

    def __str__(self) -> str:
        return f"Renewal {self.pk} of {self.prescription_id}"

    @property
    def is_open(self) -> bool:
        return self.status in RENEWAL_OPEN


class RenewalEvent(_AppendOnly):
    renewal = models.ForeignKey(RenewalRequest, on_delete=models.PROTECT, related_name="events")
    statuses = RenewalStatus

    class Meta(_AppendOnly.Meta):
        pass
