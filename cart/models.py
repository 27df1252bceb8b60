"""A cart holds package tiers. It stores what the customer chose, never what it costs:
prices are read from the catalog every time the cart is priced (``cart.pricing``)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from djmoney.models.fields import MoneyField


class Cart(models.Model):
    """One per signed-in customer, or one per anonymous session (database-backed)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="cart",
    )
    session_key = models.CharField(max_length=64, null=True, blank=True, unique=True)
    # A discount code the customer entered; checked again every time the cart is priced.
    discount_code = models.CharField(max_length=40, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=False) | Q(session_key__isnull=False),
                name="cart_cart_has_owner",
            ),
        ]

    def __str__(self) -> str:
        return f"Cart {self.pk}"


class CartLine(models.Model):
    cart = models.ForeignKey(Cart, on_delete=models.CASCADE, related_name="lines")
    tier = models.ForeignKey("catalog.PackageTier", on_delete=models.CASCADE, related_name="+")
    packages = models.PositiveSmallIntegerField(default=1)
    # The pack price when the customer added it: only used to tell them it has changed.
    price_when_added = MoneyField(max_digits=10, decimal_places=2, default_currency="USD")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("added_at", "id")
        constraints = [
            models.UniqueConstraint(fields=("cart", "tier"), name="cart_line_unique_tier"),
            models.CheckConstraint(
                condition=Q(packages__gte=1), name="cart_line_packages_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.packages} × {self.tier}"
