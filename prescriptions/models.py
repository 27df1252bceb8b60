"""Prescriptions: the record given at checkout, the pharmacist's decisions, prescriptions on file.

``PatientDetails`` and ``Prescription`` are what the customer gave with a prescription order;
``PrescriptionReview`` is the append-only record of every pharmacist decision on it. A
``PrescriptionOnFile`` is what the pharmacist recorded when approving a prescription item: who it
is for, the medicine and strength, the directions, how much per fill and how many refills. Its
counters (``refills_used``, the last fill) move only when a payment is captured
(``prescriptions.refill_count``); every fill and every change leaves a ``PrescriptionOnFileEvent``
row that can never be edited. The database refuses impossible states (more refills used than
authorised, a dose of zero, an expiry before the date written), whatever code path writes.

The tables keep the names they had when these models lived in ``orders`` (``Meta.db_table``):
the move (issue 23) changed Django's state only, so the data and the fill-number trigger
(``orders`` migration 0008) stay as they are.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.urls import reverse
from djmoney.models.fields import MoneyField

from .care_states import RENEWAL_OPEN, RenewalStatus, TransferStatus


def _prescription_storage():
    from .files import private_storage

    return private_storage()


def _prescription_upload_to(instance, filename: str) -> str:
    """A random name; the customer's file name never reaches the disk. (Normally the service has
    already chosen the name; this is the fallback for a file assigned another way.)"""
    from .files import ALLOWED_TYPES

    extension = ALLOWED_TYPES.get(instance.content_type, "bin")
    return f"prescriptions/{uuid.uuid4().hex}.{extension}"


class PatientDetails(models.Model):
    """Who the prescription medicines are for, as given at checkout (one per prescription order)."""

    order = models.OneToOneField("orders.Order", on_delete=models.CASCADE, related_name="patient")
    name = models.CharField("patient's full name", max_length=150)
    date_of_birth = models.DateField()
    allergies = models.TextField(blank=True)
    current_medicines = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "orders_patientdetails"
        verbose_name_plural = "patient details"

    def __str__(self) -> str:
        return f"Patient for order {self.order_id}"


class Prescription(models.Model):
    """The evidence for one prescription line: an uploaded copy, the prescriber's details, or both.

    The id is a random UUID and is the only handle on the file (``/prescriptions/<uuid>/``).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    order = models.ForeignKey(
        "orders.Order", on_delete=models.CASCADE, related_name="prescriptions"
    )
    line = models.OneToOneField(
        "orders.OrderLine",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="prescription",
    )
    # Kept when the pharmacist removes the line, so the record still says what it was for.
    description = models.CharField(max_length=200)
    file = models.FileField(
        storage=_prescription_storage, upload_to=_prescription_upload_to, max_length=200, blank=True
    )
    content_type = models.CharField(max_length=40, blank=True)
    size = models.PositiveIntegerField(null=True, blank=True)
    prescriber_name = models.CharField(max_length=150, blank=True)
    prescriber_phone = models.CharField(max_length=30, blank=True)
    prescriber_licence = models.CharField(
        "prescriber licence or NPI number", max_length=40, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "orders_prescription"
        ordering = ("order", "created_at", "description")
        constraints = [
            models.CheckConstraint(
                condition=~Q(file="")
                | (~Q(prescriber_name="") & ~Q(prescriber_phone="") & ~Q(prescriber_licence="")),
                name="orders_prescription_file_or_prescriber",
            )
        ]

    def __str__(self) -> str:
        return f"Prescription for {self.description}"

    @property
    def has_file(self) -> bool:
        return bool(self.file)


class ReviewAction(models.TextChoices):
    APPROVED = "approved", "Approved"
    APPROVED_WITH_CHANGES = "approved_with_changes", "Approved with changes"
    REJECTED = "rejected", "Not approved"
    INFORMATION_REQUESTED = "information_requested", "More information requested"
    AUTHORISATION_EXPIRED = "authorisation_expired", "Card authorisation expired before review"


class PrescriptionReviewQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise ValueError("Prescription reviews are an audit trail: they cannot be changed.")

    def delete(self):
        raise ValueError("Prescription reviews are an audit trail: they cannot be deleted.")


class PrescriptionReview(models.Model):
    """Append-only record of every pharmacist decision on an order (and the system's lapse).

    ``changes`` keeps, per line, what was ordered and what was approved, so the order lines can
    show the approved packages while the original figures stay on record.
    """

    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="reviews")
    action = models.CharField(max_length=30, choices=ReviewAction.choices)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    note = models.TextField("reason or message", blank=True)
    ordered_total = MoneyField(
        max_digits=10, decimal_places=2, default_currency="USD", null=True, blank=True
    )
    approved_total = MoneyField(
        max_digits=10, decimal_places=2, default_currency="USD", null=True, blank=True
    )
    changes = models.JSONField(default=list, blank=True)
    # The form's one-time key: a double-clicked button records (and emails) once.
    submission_key = models.UUIDField(unique=True, null=True, blank=True, editable=False)

    objects = PrescriptionReviewQuerySet.as_manager()

    class Meta:
        db_table = "orders_prescriptionreview"
        ordering = ("created_at", "id")
        permissions = [
            ("review_prescription", "Can approve or reject prescription orders"),
            # One per decision, checked in prescriptions.decisions. Approving captures the payment
            # and refusing cancels it, so a pharmacist also holds capture_payment and cancel_order.
            (
                "approve_prescription",
                "Can approve a prescription order (as ordered or with changes)",
            ),
            ("reject_prescription", "Can refuse a prescription order"),
            (
                "request_prescription_information",
                "Can ask a customer for more about a prescription",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} on order {self.order_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None or not self._state.adding:
            raise ValueError("Prescription reviews are an audit trail: they cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Prescription reviews are an audit trail: they cannot be deleted.")


class PrescriptionOnFile(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="prescriptions_on_file",
    )
    patient_name = models.CharField(max_length=150)
    patient_date_of_birth = models.DateField()
    # The prescribed strength; refills are offered only in packs of this dosage.
    dosage = models.ForeignKey("catalog.Dosage", on_delete=models.PROTECT, related_name="+")
    medicine = models.CharField(max_length=120, help_text="As written, e.g. “Baclofen”.")
    strength = models.CharField(max_length=40)
    directions = models.CharField(max_length=300, help_text="E.g. “1 tablet 3 times a day”.")
    daily_dose = models.DecimalField("daily dose (pills a day)", max_digits=6, decimal_places=2)
    quantity_per_fill = models.PositiveIntegerField("pills per fill")
    refills_authorised = models.PositiveSmallIntegerField()
    refills_used = models.PositiveSmallIntegerField(default=0)
    date_written = models.DateField()
    expires_on = models.DateField("valid until")
    prescriber_name = models.CharField(max_length=150, blank=True)
    prescriber_phone = models.CharField(max_length=30, blank=True)
    prescriber_licence = models.CharField(max_length=40, blank=True)
    # Where it came from: the order first filled from it, and its uploaded copy / prescriber details.
    source_order = models.ForeignKey(
        "orders.Order", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    source_prescription = models.ForeignKey(
        "Prescription",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="records_on_file",
    )
    last_filled_on = models.DateField(null=True, blank=True)
    last_fill_pills = models.PositiveIntegerField(null=True, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "orders_prescriptiononfile"
        ordering = ("-created_at",)
        verbose_name = "prescription on file"
        verbose_name_plural = "prescriptions on file"
        constraints = [
            models.CheckConstraint(
                condition=Q(refills_used__lte=F("refills_authorised")),
                name="orders_rxfile_refills_within_authorised",
            ),
            models.CheckConstraint(
                condition=Q(daily_dose__gt=0), name="orders_rxfile_daily_dose_positive"
            ),
            models.CheckConstraint(
                condition=Q(quantity_per_fill__gt=0), name="orders_rxfile_quantity_positive"
            ),
            models.CheckConstraint(
                condition=Q(expires_on__gte=F("date_written")),
                name="orders_rxfile_expiry_after_written",
            ),
            models.CheckConstraint(
                condition=~Q(source_prescription=None)
                | (~Q(prescriber_name="") & ~Q(prescriber_licence="")),
                name="orders_rxfile_has_evidence",
            ),
        ]
        indexes = [models.Index(fields=("user", "expires_on"))]

    def __str__(self) -> str:
        return f"{self.medicine} {self.strength} for {self.patient_name}"

    def get_absolute_url(self) -> str:
        return reverse("refills:detail", kwargs={"pk": self.pk})

    @property
    def refills_left(self) -> int:
        return self.refills_authorised - self.refills_used


class PrescriptionOnFileEvent(models.Model):
    """Append-only history: recorded, each fill (with its order), each change, each refusal.

    A fill is unique per (prescription, order): the capture of one order can be reported by the
    pharmacist's click, a webhook and the reconciliation task, and still counts once. Fills are
    numbered by the refills used after them, unique per prescription and bounded by the refills
    authorised, so no code path can store a fill past them or a refill that used none.
    """

    class Kind(models.TextChoices):
        RECORDED = "recorded", "Recorded"
        FILL = "fill", "Filled"
        CHANGED = "changed", "Changed"
        REFUSED = "refused", "Refill refused"
        REMINDED = "reminded", "Reminder sent"

    prescription = models.ForeignKey(
        PrescriptionOnFile, on_delete=models.PROTECT, related_name="events"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    order = models.ForeignKey(
        "orders.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    pills = models.PositiveIntegerField(null=True, blank=True)
    refills_counted = models.PositiveSmallIntegerField(
        default=0, help_text="Refills this fill used (0 for the first fill)."
    )
    # A fill's number is the count of refills used once it is counted: 0 for the first fill, then
    # rising by the refills each fill uses. Unique per prescription and never above the refills
    # authorised (a trigger, migration 0008), so the database itself refuses a fill past them.
    fill_number = models.PositiveSmallIntegerField(null=True, blank=True)
    filled_on = models.DateField(null=True, blank=True)
    note = models.TextField(blank=True)
    changes = models.JSONField(default=dict, blank=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        db_table = "orders_prescriptiononfileevent"
        ordering = ("created_at", "id")
        constraints = [
            models.UniqueConstraint(
                fields=("prescription", "order"),
                condition=Q(kind="fill"),
                name="orders_rxfile_one_fill_per_order",
            ),
            models.UniqueConstraint(
                fields=("prescription", "order"),
                condition=Q(kind="reminded"),
                name="orders_rxfile_one_reminder_per_fill",
            ),
            models.UniqueConstraint(
                fields=("prescription", "fill_number"),
                condition=Q(kind="fill"),
                name="orders_rxfile_fill_number_unique",
            ),
            # A fill is numbered; only the first fill (number 0) uses no refill.
            models.CheckConstraint(
                condition=~Q(kind="fill")
                | (
                    Q(fill_number__isnull=False)
                    & (
                        Q(fill_number=0, refills_counted=0)
                        | Q(refills_counted__gte=1, fill_number__gte=F("refills_counted"))
                    )
                ),
                name="orders_rxfile_fill_numbered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.prescription}"

    def save(self, *args, **kwargs):
        if self.pk is not None or not self._state.adding:
            raise ValueError("The history of a prescription on file cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("The history of a prescription on file cannot be deleted.")


class CartRefill(models.Model):
    """A cart line that refills a prescription on file (checked again, server-side, at checkout)."""

    cart_line = models.OneToOneField(
        "cart.CartLine", on_delete=models.CASCADE, related_name="refill"
    )
    prescription = models.ForeignKey(PrescriptionOnFile, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "orders_cartrefill"


class OrderRefill(models.Model):
    """An order line filled from a prescription on file; counted as a fill when the payment is captured."""

    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="refills")
    line = models.OneToOneField(
        "orders.OrderLine", null=True, on_delete=models.SET_NULL, related_name="refill"
    )
    prescription = models.ForeignKey(
        PrescriptionOnFile, on_delete=models.PROTECT, related_name="order_refills"
    )
    pills = models.PositiveIntegerField()
    refills_needed = models.PositiveSmallIntegerField(default=1)

    class Meta:
        db_table = "orders_orderrefill"
        constraints = [
            models.UniqueConstraint(
                fields=("order", "prescription"), name="orders_refill_one_per_order_prescription"
            ),
            models.CheckConstraint(
                condition=Q(refills_needed__gte=1), name="orders_refill_needs_a_refill"
            ),
        ]


class RefillReminderSettings(models.Model):
    """A customer's choice about refill reminders. Without a row: no reminders."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="refill_reminder_settings"
    )
    reminders = models.BooleanField(
        "email me before my prescription medicine runs out", default=False
    )
    name_medicine = models.BooleanField("name the medicine in the email", default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "orders_refillremindersettings"
        verbose_name_plural = "refill reminder settings"


# --- Continuing care (issue 25): transfers in and renewal requests -------------------------------
# Each moves along the steps in ``prescriptions.care_states``; each step leaves an event row that
# can never be edited (who, when, from, to, why). The database refuses a refused transfer or denied
# renewal without its reason, a received transfer or renewed prescription without the prescription
# on file it became, and two open renewals of one prescription.


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
        "PrescriptionOnFile",
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
        "PrescriptionOnFile", on_delete=models.PROTECT, related_name="renewal_requests"
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
        "PrescriptionOnFile",
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


from .message_models import (  # noqa: F401  (messages with a pharmacist, issue 25)
    MessageKind,
    MessageSender,
    MessageThread,
    PatientMessage,
)
