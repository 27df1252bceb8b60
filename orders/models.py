"""Orders: what the customer bought, at the price they paid, and everything that happened since.

An order is a snapshot. Lines copy the product name, strength, pack and prices at the moment of
purchase, so a later price change or a renamed product never alters an order already placed.
Statuses move only through ``orders.services.order_transition`` (tables in ``orders.state``) and
every move leaves an append-only ``OrderEvent``.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from djmoney.models.fields import MoneyField

from .state import OrderStatus, PaymentStatus

ORDER_NUMBER_OFFSET = 10000


class OrderNumber(models.Model):
    """A row per order number ever issued: the autoincrement key cannot hand out a number twice,
    on PostgreSQL or SQLite, even under concurrent checkouts. Number = 10000 + id (10001, …)."""

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(auto_now_add=True)

    @property
    def number(self) -> int:
        return ORDER_NUMBER_OFFSET + self.id


class ShippingMethod(models.TextChoices):
    STANDARD = "standard", "Standard (3–5 business days)"
    EXPRESS = "express", "Express (1–2 business days)"


class OrderQuerySet(models.QuerySet):
    def awaiting_payment(self) -> OrderQuerySet:
        return self.filter(status=OrderStatus.PENDING_PAYMENT)


class Order(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    number = models.PositiveBigIntegerField(unique=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="orders",
    )
    # The cart the order was made from: emptied once the payment is authorised, not before.
    cart = models.ForeignKey(
        "cart.Cart", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    email = models.EmailField()
    status = models.CharField(
        max_length=20, choices=OrderStatus.choices, default=OrderStatus.PENDING_PAYMENT
    )
    payment_status = models.CharField(
        max_length=20, choices=PaymentStatus.choices, default=PaymentStatus.PENDING
    )

    ship_name = models.CharField("name", max_length=150)
    ship_line1 = models.CharField("address line 1", max_length=200)
    ship_line2 = models.CharField("address line 2", max_length=200, blank=True)
    ship_city = models.CharField("city", max_length=100)
    ship_state = models.CharField("state", max_length=2)
    ship_zip = models.CharField("ZIP code", max_length=10)
    shipping_method = models.CharField(max_length=10, choices=ShippingMethod.choices)

    subtotal = MoneyField(max_digits=10, decimal_places=2, default_currency="USD")
    savings = MoneyField(max_digits=10, decimal_places=2, default_currency="USD")
    shipping = MoneyField(max_digits=10, decimal_places=2, default_currency="USD")
    total = MoneyField(max_digits=10, decimal_places=2, default_currency="USD")
    # Discount and sales tax, snapshotted at placement with the rules that produced them, so
    # approval with changes recomputes with the same code and rate (cart.calculations) and a
    # later rate change never touches a placed order.
    discount = MoneyField(max_digits=10, decimal_places=2, default_currency="USD", default=0)
    discount_code = models.CharField(max_length=40, blank=True)
    discount_rule = models.JSONField(null=True, blank=True, editable=False)
    tax = MoneyField(
        "sales tax", max_digits=10, decimal_places=2, default_currency="USD", default=0
    )
    tax_rule = models.JSONField(null=True, blank=True, editable=False)
    amount_captured = MoneyField(max_digits=10, decimal_places=2, default_currency="USD", default=0)
    amount_refunded = MoneyField(max_digits=10, decimal_places=2, default_currency="USD", default=0)

    has_prescription_items = models.BooleanField(default=False)
    stock_reserved = models.BooleanField(
        default=False, help_text="Tracked stock was taken for this order and not yet given back."
    )
    stripe_payment_intent_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    payment_error = models.CharField(max_length=500, blank=True)
    # The card as Stripe reported it when the payment was authorised or captured (brand and last
    # four digits only, never more): the receipt an FSA/HSA administrator accepts names it.
    card_brand = models.CharField(max_length=20, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OrderQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.CheckConstraint(
                condition=Q(total__gte=0), name="orders_order_total_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(amount_refunded__lte=models.F("amount_captured")),
                name="orders_order_refund_within_capture",
            ),
        ]
        indexes = [models.Index(fields=("status", "created_at"))]
        # Staff actions that move money or goods; checked by the services (orders.services,
        # orders.prescription_decisions, orders.fulfilment), not only by the pages that show their buttons.
        permissions = [
            ("refund_order", "Can refund an order's payment"),
            ("capture_payment", "Can capture an order's card payment"),
            ("cancel_order", "Can cancel an order"),
            ("mark_shipped", "Can mark an order shipped"),
        ]

    def __str__(self) -> str:
        return f"Order {self.number}"

    def get_absolute_url(self) -> str:
        return reverse("orders:detail", kwargs={"number": self.number})

    @property
    def amount_refundable(self):
        from cart.calculations import subtract

        return subtract(self.amount_captured, self.amount_refunded)

    @property
    def tax_rate(self):
        """The snapshotted rate in percent (``None`` when no tax applied)."""
        from decimal import Decimal

        return Decimal(self.tax_rule["rate"]) if self.tax_rule else None

    @property
    def shipping_address_lines(self) -> list[str]:
        lines = [self.ship_name, self.ship_line1]
        if self.ship_line2:
            lines.append(self.ship_line2)
        lines.append(f"{self.ship_city}, {self.ship_state} {self.ship_zip}")
        return lines


class OrderLine(models.Model):
    """What was bought, copied from the catalog at the moment of purchase."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    tier = models.ForeignKey(
        "catalog.PackageTier", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    product_name = models.CharField(max_length=120)
    strength = models.CharField(max_length=40)
    pack_size = models.PositiveIntegerField("pills per pack")
    packages = models.PositiveSmallIntegerField()
    unit_price = MoneyField(
        "price per pack", max_digits=10, decimal_places=2, default_currency="USD"
    )
    per_pill = MoneyField("price per pill", max_digits=10, decimal_places=2, default_currency="USD")
    list_price = MoneyField(
        "list price per pack", max_digits=10, decimal_places=2, default_currency="USD"
    )
    line_total = MoneyField(max_digits=10, decimal_places=2, default_currency="USD")
    discount = MoneyField(
        "discount share", max_digits=10, decimal_places=2, default_currency="USD", default=0
    )
    tax = MoneyField(
        "sales tax share", max_digits=10, decimal_places=2, default_currency="USD", default=0
    )
    legal_class = models.CharField(max_length=20, blank=True)
    product_id = models.PositiveIntegerField(null=True, blank=True)
    requires_prescription = models.BooleanField(default=False)
    # Packs taken from tracked stock for this line and not yet given back: stock is returned
    # exactly as taken, even if staff start or stop tracking the tier in between.
    reserved_packages = models.PositiveSmallIntegerField(default=0)
    # Written by the prescription side when the line is dispensed (approved and paid, or a refill
    # counted): the receipt shows the prescription number and the fill date the pharmacy recorded.
    rx_number = models.CharField("prescription number", max_length=20, blank=True)
    filled_on = models.DateField("fill date", null=True, blank=True)

    class Meta:
        ordering = ("order", "id")
        constraints = [
            models.CheckConstraint(
                condition=Q(packages__gte=1), name="orders_line_packages_positive"
            )
        ]

    def __str__(self) -> str:
        return f"{self.packages} × {self.product_name} {self.strength} ({self.pack_size})"


class OrderEvent(models.Model):
    """Append-only history of an order: status moves, payment moves, refunds, notes."""

    class Kind(models.TextChoices):
        PLACED = "placed", "Order placed"
        STATUS = "status", "Order status changed"
        PAYMENT = "payment", "Payment status changed"
        STOCK = "stock", "Stock"
        NOTE = "note", "Note"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20, blank=True)
    note = models.TextField(blank=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ("created_at", "id")

    def __str__(self) -> str:
        if self.from_status or self.to_status:
            return f"{self.get_kind_display()}: {self.from_status} → {self.to_status}"
        return self.get_kind_display()

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("Order events are append-only.")
        super().save(*args, **kwargs)


class OrderRefund(models.Model):
    """A refund sent through Stripe by staff; the Stripe id makes a retried refund count once."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="refunds")
    stripe_refund_id = models.CharField(max_length=255, unique=True)
    amount = MoneyField(max_digits=10, decimal_places=2, default_currency="USD")
    reason = models.TextField()
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("created_at", "id")

    def __str__(self) -> str:
        return f"Refund {self.amount} on order {self.order_id}"


class StripeEvent(models.Model):
    """Every webhook delivery, by Stripe's event id: a repeated delivery is acknowledged, not replayed."""

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    payload = models.JSONField()
    processed = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-received_at",)
        verbose_name = "Stripe event"
        # The few unprocessed events among many: the retry sweep and the staff gauge read only them.
        indexes = [
            models.Index(
                fields=["received_at"],
                condition=Q(processed=False),
                name="orders_stripeevent_unprocessed",
            )
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


# =============================================================================================
# Prescriptions and pharmacist review (issue #6).
# Services: ``orders.prescriptions`` (record, queue), ``orders.prescription_decisions``,
# ``orders.fulfilment`` (shipping); uploads: ``orders.files``; staff pages: ``orders.review_views``.
# =============================================================================================


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

    order = models.OneToOneField(Order, on_delete=models.CASCADE, related_name="patient")
    name = models.CharField("patient's full name", max_length=150)
    date_of_birth = models.DateField()
    allergies = models.TextField(blank=True)
    current_medicines = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "patient details"

    def __str__(self) -> str:
        return f"Patient for order {self.order_id}"


class Prescription(models.Model):
    """The evidence for one prescription line: an uploaded copy, the prescriber's details, or both.

    The id is a random UUID and is the only handle on the file (``/prescriptions/<uuid>/``).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="prescriptions")
    line = models.OneToOneField(
        OrderLine, null=True, blank=True, on_delete=models.SET_NULL, related_name="prescription"
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

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="reviews")
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
        ordering = ("created_at", "id")
        permissions = [
            ("review_prescription", "Can approve or reject prescription orders"),
            # One per decision, checked in orders.prescription_decisions. Approving captures the payment
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


class Shipment(models.Model):
    """How the parcel left: carrier and tracking number, entered by staff when it ships."""

    order = models.OneToOneField(Order, on_delete=models.CASCADE, related_name="shipment")
    carrier = models.CharField(max_length=60)
    tracking_number = models.CharField(max_length=60)
    shipped_at = models.DateTimeField(auto_now_add=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"{self.carrier} {self.tracking_number}"


# Prescriptions on file and refills (issue #16): models live in their own module.
from .refill_models import (  # noqa: F401
    CartRefill,
    OrderRefill,
    PrescriptionOnFile,
    PrescriptionOnFileEvent,
    RefillReminderSettings,
)
