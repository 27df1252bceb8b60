"""Discount codes staff create in the admin, and each use of one.

The rule a code applies (percent, fixed amount or free shipping, to which legal classes or
products, above which subtotal) is computed by ``cart.calculations``; this app only knows whether
a code may be used now and counts its uses. It sits below ``cart`` and ``orders`` (arrows:
cart → discounts → catalog; orders → discounts), so a redemption names its order by id rather
than by a foreign key. Every change to a code is kept by django-simple-history, like prices.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords


class DiscountKind(models.TextChoices):
    PERCENT = "percent", "Percent off the items"
    FIXED = "fixed", "Fixed amount off the order"
    FREE_SHIPPING = "free_shipping", "Free standard shipping"


class DiscountCode(models.Model):
    code = models.CharField(
        max_length=40, unique=True, help_text="What customers type; not case-sensitive."
    )
    description = models.CharField(max_length=200, blank=True, help_text="For staff: the campaign.")
    kind = models.CharField(
        max_length=20, choices=DiscountKind.choices, default=DiscountKind.PERCENT
    )
    value = models.DecimalField(
        max_digits=8,
        decimal_places=2,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Percent (e.g. 10) or dollars (e.g. 5.00); ignored for free shipping.",
    )
    min_subtotal = models.DecimalField(
        "minimum subtotal ($)",
        max_digits=10,
        decimal_places=2,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
    )
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    max_uses = models.PositiveIntegerField(
        "total uses", null=True, blank=True, help_text="Empty: unlimited."
    )
    max_uses_per_email = models.PositiveIntegerField(
        "uses per customer",
        null=True,
        blank=True,
        default=1,
        help_text="Per customer: their account and their mailbox (case and +tags ignored; for Gmail, dots too). "
        "Empty: unlimited.",
    )
    applies_to_general_sale = models.BooleanField(default=True)
    applies_to_pharmacy = models.BooleanField("applies to pharmacy-only", default=True)
    applies_to_prescription = models.BooleanField(
        "applies to prescription-only",
        default=False,
        help_text="Controlled medicines are never sold online, so never discounted.",
    )
    products = models.ManyToManyField(
        "catalog.Product",
        blank=True,
        related_name="+",
        help_text="Only these products (empty: any of the classes above).",
    )
    is_active = models.BooleanField("active", default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords(m2m_fields=[products])

    class Meta:
        ordering = ("code",)
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind="percent") | Q(value__lte=100),
                name="discounts_percent_at_most_100",
            ),
            models.CheckConstraint(
                condition=Q(ends_at__isnull=True)
                | Q(starts_at__isnull=True)
                | Q(ends_at__gt=models.F("starts_at")),
                name="discounts_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return self.code

    def save(self, *args, **kwargs):
        self.code = self.code.strip().upper()
        super().save(*args, **kwargs)


class DiscountRedemption(models.Model):
    """One use of a code: counted when the order's card is authorised, given back (``released_at``)
    if the order is canceled or rejected."""

    code = models.ForeignKey(DiscountCode, on_delete=models.PROTECT, related_name="redemptions")
    order_id = models.UUIDField(unique=True)
    order_number = models.PositiveBigIntegerField()
    email = models.EmailField()
    # The address as discounts.services.mailbox_normalise reduces it: what "uses per customer" counts.
    mailbox = models.CharField(max_length=254, default="")
    # The account the order was placed in, if any (also counted per customer).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    amount = models.DecimalField(
        max_digits=10, decimal_places=2, help_text="Discount given, in dollars."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)
        indexes = [models.Index(fields=("code", "email")), models.Index(fields=("code", "mailbox"))]

    def __str__(self) -> str:
        return f"{self.code} on order {self.order_number}"
