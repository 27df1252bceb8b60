"""The email outbox: one row per email the shop means to send, with its delivery state.

The row is written in the same transaction as the business change that causes it (payment
authorised, prescription approved...), so an email exists if and only if its cause committed.
A Celery task then delivers it; the row's status makes delivery idempotent (a redelivered task or
a twice-delivered webhook never sends a second copy), and ``dedupe_key`` makes *queuing* idempotent.
"""

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models


class EmailKind(models.TextChoices):
    ORDER_RECEIVED = "order_received", "Order received"
    PAYMENT_CAPTURED = "payment_captured", "Payment taken (receipt)"
    PRESCRIPTION_APPROVED = "prescription_approved", "Prescription approved"
    PRESCRIPTION_REJECTED = "prescription_rejected", "Prescription not approved"
    INFORMATION_REQUESTED = "information_requested", "More information requested"
    SHIPPED = "shipped", "Order shipped"
    REFUND_ISSUED = "refund_issued", "Refund issued"
    STAFF_NEW_ORDER = "staff_new_order", "Staff: new order"
    STAFF_AUTHORISATIONS_EXPIRING = (
        "staff_authorisations_expiring",
        "Staff: card holds about to expire",
    )
    # Account emails: the sending app renders them and queues plain data (``email_queue_message``).
    ACCOUNT_VERIFICATION = "account_verification", "Account: verify the email address"
    ACCOUNT_PASSWORD_RESET = "account_password_reset", "Account: password reset"
    ACCOUNT_EMAIL_CHANGE = "account_email_change", "Account: email address changed"
    ACCOUNT_PASSWORD_CHANGED = "account_password_changed", "Account: password changed"
    ACCOUNT_NEW_SIGN_IN = "account_new_sign_in", "Account: new sign-in (staff)"
    ACCOUNT_NOTICE = "account_notice", "Account: other security notice"
    REFILL_REMINDER = "refill_reminder", "Refill reminder"
    STAFF_EMAILS_FAILED = "staff_emails_failed", "Staff: emails that could not be sent"
    # "A message is waiting": rendered by the prescriptions app, never with the message itself.
    PHARMACY_MESSAGE = "pharmacy_message", "A message from the pharmacist is waiting"


#: Kinds queued already rendered (subject, text, html in ``context``): the outbox only delivers them.
PRERENDERED_KINDS = frozenset(
    {
        EmailKind.ACCOUNT_VERIFICATION,
        EmailKind.ACCOUNT_PASSWORD_RESET,
        EmailKind.ACCOUNT_EMAIL_CHANGE,
        EmailKind.ACCOUNT_PASSWORD_CHANGED,
        EmailKind.ACCOUNT_NEW_SIGN_IN,
        EmailKind.ACCOUNT_NOTICE,
        EmailKind.PHARMACY_MESSAGE,
    }
)


class EmailStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    RETRYING = "retrying", "Waiting to retry"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


#: Not sent yet, and something will still try: what "unsent" means in ``outbox_health``.
UNSENT_STATUSES = (EmailStatus.QUEUED, EmailStatus.SENDING, EmailStatus.RETRYING)


class OutboundEmail(models.Model):
    order = models.ForeignKey(
        "orders.Order",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="emails",
    )
    kind = models.CharField(max_length=40, choices=EmailKind.choices)
    recipient = models.EmailField()
    subject = models.CharField(
        max_length=200, blank=True, help_text="Filled in when the email is rendered."
    )
    context = models.JSONField(
        default=dict,
        blank=True,
        encoder=DjangoJSONEncoder,
        help_text="Everything the templates show, as the sending app built it (plain data), so a retry sends the same email.",
    )
    attachments = models.JSONField(
        default=list,
        blank=True,
        help_text="Files made when the email is sent, by reference: a renderer named in settings.EMAIL_ATTACHMENT_RENDERERS and its plain arguments. The row never holds the file.",
    )
    forbidden_words = models.JSONField(
        default=list,
        blank=True,
        help_text="Words the subject must never contain (the order's medicines), given by the sender.",
    )
    status = models.CharField(
        max_length=10, choices=EmailStatus.choices, default=EmailStatus.QUEUED
    )
    attempts = models.PositiveSmallIntegerField(
        default=0, help_text="Tries since the email was queued (or last resent by staff)."
    )
    next_attempt_at = models.DateTimeField(
        null=True, blank=True, help_text="When an email waiting to retry is tried again."
    )
    last_error = models.TextField(blank=True)
    reported_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the staff digest of emails that could not be sent listed it.",
    )
    dedupe_key = models.CharField(
        max_length=200,
        unique=True,
        help_text="Chosen by the sender: one email per key (e.g. order and kind, or the event for kinds that repeat).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "outbound email"
        permissions = [("resend_email", "Can resend an email")]
        indexes = [
            models.Index(fields=["status", "updated_at"], name="notif_email_status_upd"),
            models.Index(fields=["status", "next_attempt_at"], name="notif_email_status_next"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(status=EmailStatus.RETRYING)
                | models.Q(next_attempt_at__isnull=False),
                name="notif_email_retry_has_time",
            ),
            models.CheckConstraint(
                condition=models.Q(status=EmailStatus.SENT, sent_at__isnull=False)
                | ~models.Q(status=EmailStatus.SENT),
                name="notif_email_sent_has_timestamp",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} to {self.recipient} ({self.get_status_display()})"


class DigestEntry(models.Model):
    """An order listed in a staff digest; the unique constraint lists each order at most once a day."""

    email = models.ForeignKey(
        OutboundEmail, on_delete=models.CASCADE, related_name="digest_entries"
    )
    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=40, choices=EmailKind.choices)
    day = models.DateField()

    class Meta:
        verbose_name_plural = "digest entries"
        constraints = [
            models.UniqueConstraint(
                fields=["order", "kind", "day"], name="notif_digest_once_per_order_day"
            ),
        ]
