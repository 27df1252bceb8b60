"""Secure messages between a patient and the pharmacists (issue 25). Imported at the end of
``prescriptions.models``.

One ``MessageThread`` per patient account; its ``PatientMessage`` rows are health data and part of
the pharmacy record: written once, never edited or deleted by anyone (patient or staff), kept as
long as the record (``PHARMACY_RECORD_RETENTION_YEARS``, ``docs/messages.md``). What moves is the
thread: who has read up to which message on each side, and since when a patient waits for an
answer. Keeping read receipts on the thread is what lets the messages stay append-only.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class MessageSender(models.TextChoices):
    PATIENT = "patient", "Patient"
    PHARMACY = "pharmacy", "Pharmacist"


class MessageKind(models.TextChoices):
    MESSAGE = "message", "Message"
    # Posted by the pharmacy when a pharmacist approves a new prescription (the counselling offer
    # a pharmacy must make); one per order.
    COUNSELLING_OFFER = "counselling_offer", "Counselling offer"


class MessageThread(models.Model):
    """A patient's one conversation with the pharmacy, with each side's read mark.

    ``patient_read_upto`` and ``pharmacy_read_upto`` are the id of the last message that side has
    seen: the other side's later messages are its unread ones. Messages are added with the thread
    row locked, so ids grow in commit order within a thread and a read mark never skips one.
    ``awaiting_reply_since`` is the time of the oldest patient message no pharmacist has answered
    yet (the staff inbox's waiting time); a pharmacist's answer clears it.
    """

    patient = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="pharmacy_thread"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_message_at = models.DateTimeField(null=True, blank=True)
    awaiting_reply_since = models.DateTimeField(null=True, blank=True, db_index=True)
    patient_read_upto = models.PositiveBigIntegerField(default=0)
    patient_read_at = models.DateTimeField(null=True, blank=True)
    pharmacy_read_upto = models.PositiveBigIntegerField(default=0)
    pharmacy_read_at = models.DateTimeField(null=True, blank=True)
    pharmacy_read_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = "message thread"
        permissions = [
            ("answer_patient_messages", "Can read and answer patients' messages"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(awaiting_reply_since__isnull=True)
                | Q(last_message_at__gte=models.F("awaiting_reply_since")),
                name="rx_thread_waiting_since_a_message",
            ),
        ]

    def __str__(self) -> str:
        return f"Messages with patient {self.patient_id}"


class PatientMessageQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise ValueError("Messages are part of the pharmacy record: they cannot be changed.")

    def delete(self):
        raise ValueError("Messages are part of the pharmacy record: they cannot be deleted.")


class PatientMessage(models.Model):
    """One message, as sent: never edited, never deleted (an audit trail of what was said)."""

    thread = models.ForeignKey(MessageThread, on_delete=models.PROTECT, related_name="messages")
    sender = models.CharField(max_length=10, choices=MessageSender.choices)
    kind = models.CharField(max_length=20, choices=MessageKind.choices, default=MessageKind.MESSAGE)
    # The patient, or the pharmacist who wrote (or whose approval posted the counselling offer).
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.CharField(max_length=4000)
    order = models.ForeignKey(
        "orders.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    prescription = models.ForeignKey(
        "prescriptions.PrescriptionOnFile",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # The form's one-time key: a double-clicked "Send" posts (and emails) once.
    submission_key = models.UUIDField(unique=True, null=True, blank=True, editable=False)

    objects = PatientMessageQuerySet.as_manager()

    class Meta:
        ordering = ("created_at", "id")
        verbose_name = "message"
        constraints = [
            models.CheckConstraint(condition=~Q(body=""), name="rx_message_has_text"),
            models.CheckConstraint(
                condition=Q(kind=MessageKind.MESSAGE)
                | Q(sender=MessageSender.PHARMACY, order__isnull=False),
                name="rx_message_counselling_offer_from_pharmacy_on_an_order",
            ),
            models.UniqueConstraint(
                fields=["order"],
                condition=Q(kind=MessageKind.COUNSELLING_OFFER),
                name="rx_message_one_counselling_offer_per_order",
            ),
        ]
        indexes = [models.Index(fields=["thread", "id"], name="rx_message_thread_id")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} from the {self.get_sender_display().lower()} ({self.pk})"

    def save(self, *args, **kwargs):
        if self.pk is not None or not self._state.adding:
            raise ValueError("Messages are part of the pharmacy record: they cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Messages are part of the pharmacy record: they cannot be deleted.")
