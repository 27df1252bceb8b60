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
        # prescriptions.decisions, orders.fulfilment), not only by the pages that show their buttons.
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
