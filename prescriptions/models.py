"""Prescriptions' models (moving here from ``orders``, issue 23), and auto-refill (issue 25).

An ``AutoRefill`` is a patient's standing consent to have one prescription on file refilled on
schedule with a saved card: what (the pack), when (the next due date), how it is charged (the
card's Stripe ids, brand and last four digits, never the card itself), until when (the consent
lasts a year). Each placement is an ``AutoRefillRun``, unique per (auto-refill, due date): two
job runs at once cannot place two orders for one due date. The rules are in
``prescriptions.autorefill``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class AutoRefillStatus(models.TextChoices):
    ACTIVE = "active", "On"
    PAUSED = "paused", "Paused"
    STOPPED = "stopped", "Stopped"


class PauseReason(models.TextChoices):
    PATIENT = "patient", "Paused by you"
    DECLINED = "declined", "The saved card was declined"
    AUTHENTICATION = "authentication", "The bank asked to confirm the payment"
    EXPIRED = "expired", "The prescription has expired"
    NO_REFILLS = "no_refills", "No refills left"
    CONSENT_EXPIRED = "consent", "Your yearly consent has run out"
    PRICE_CHANGED = "price", "The price changed since the notice"
    UNAVAILABLE = "unavailable", "The pack cannot be ordered now"
    CONTROLLED = "controlled", "Controlled substances are never auto-refilled"


class AutoRefill(models.Model):
    prescription = models.OneToOneField(
        "orders.PrescriptionOnFile", on_delete=models.PROTECT, related_name="autorefill"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="autorefills"
    )
    tier = models.ForeignKey(
        "catalog.PackageTier", on_delete=models.PROTECT, related_name="+", verbose_name="pack"
    )
    status = models.CharField(
        max_length=10, choices=AutoRefillStatus.choices, default=AutoRefillStatus.PAUSED
    )
    pause_reason = models.CharField(max_length=20, choices=PauseReason.choices, blank=True)
    next_due_on = models.DateField(null=True, blank=True)
    # The consent: when it was given, the day it lapses (a year later), and the words agreed to.
    consent_at = models.DateTimeField(null=True, blank=True)
    consent_until = models.DateField(null=True, blank=True)
    consent_text = models.TextField(blank=True)
    # Where it goes and how.
    ship_name = models.CharField(max_length=150, blank=True)
    ship_line1 = models.CharField(max_length=200, blank=True)
    ship_line2 = models.CharField(max_length=200, blank=True)
    ship_city = models.CharField(max_length=100, blank=True)
    ship_state = models.CharField(max_length=2, blank=True)
    ship_zip = models.CharField(max_length=10, blank=True)
    shipping_method = models.CharField(max_length=20, default="standard")
    # The card, as Stripe knows it: ids, brand and last four digits only.
    stripe_customer_id = models.CharField(max_length=100, blank=True)
    stripe_payment_method_id = models.CharField(max_length=100, blank=True)
    stripe_setup_intent_id = models.CharField(max_length=100, blank=True)
    card_brand = models.CharField(max_length=20, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    # The cart the refill is priced and placed from (its own, never the patient's shopping cart).
    cart = models.OneToOneField(
        "cart.Cart", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # What the last notice (or the opt-in page) showed for ``quoted_for``: the order must match.
    quoted_for = models.DateField(null=True, blank=True)
    quoted_figures = models.TextField(blank=True)
    quoted_total = models.CharField(max_length=30, blank=True)
    noticed_for = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("next_due_on", "pk")
        constraints = [
            models.CheckConstraint(
                condition=~Q(status=AutoRefillStatus.ACTIVE)
                | (
                    Q(consent_at__isnull=False, consent_until__isnull=False)
                    & Q(next_due_on__isnull=False)
                    & ~Q(stripe_payment_method_id="")
                    & ~Q(consent_text="")
                ),
                name="rx_autorefill_active_has_consent_card_and_date",
            ),
            models.CheckConstraint(
                condition=Q(status=AutoRefillStatus.ACTIVE, pause_reason="")
                | ~Q(status=AutoRefillStatus.ACTIVE),
                name="rx_autorefill_active_not_paused",
            ),
        ]
        indexes = [models.Index(fields=("status", "next_due_on"))]

    def __str__(self) -> str:
        return f"Auto-refill {self.pk} ({self.get_status_display()})"

    @property
    def is_active(self) -> bool:
        return self.status == AutoRefillStatus.ACTIVE


class AutoRefillRun(models.Model):
    """One due date's placement: unique per (auto-refill, due date), so it happens once."""

    class Outcome(models.TextChoices):
        PLACING = "placing", "Placing"
        PLACED = "placed", "Order placed"
        REFUSED = "refused", "Not placed"
        CANCELED = "canceled", "Canceled by the patient"

    autorefill = models.ForeignKey(AutoRefill, on_delete=models.PROTECT, related_name="runs")
    due_on = models.DateField()
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.PLACING)
    order = models.OneToOneField(
        "orders.Order",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="autorefill_run",
    )
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-due_on",)
        constraints = [
            models.UniqueConstraint(
                fields=("autorefill", "due_on"), name="rx_autorefill_one_run_per_due_date"
            )
        ]

    def __str__(self) -> str:
        return f"Auto-refill {self.autorefill_id} due {self.due_on}: {self.outcome}"
