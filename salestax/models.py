"""The sales-tax rate table staff keep in the admin: one row per state and effective date.

A new rate is a new row with a later ``effective_from`` (the old row stays, so what was charged
when is on record); every edit is kept by django-simple-history like catalog prices. Placed
orders snapshot the rate they were charged (``orders.Order.tax_rule``), so editing this table
never changes an order already placed.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from pharmacy.us_address import US_STATES


class TaxRate(models.Model):
    state = models.CharField(max_length=2, choices=US_STATES)
    rate = models.DecimalField(
        "rate (%)",
        max_digits=6,
        decimal_places=3,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("20"))],
        help_text="Percent, e.g. 8.875. Prescription-only medicines are never taxed.",
    )
    otc_exempt = models.BooleanField(
        "OTC medicines exempt",
        default=False,
        help_text="The state exempts non-prescription (general-sale and pharmacy-only) medicines.",
    )
    shipping_taxable = models.BooleanField(
        default=False, help_text="The state taxes the shipping charge."
    )
    effective_from = models.DateField(
        help_text="Charged on orders placed from this day (shop time)."
    )
    note = models.CharField(
        max_length=200, blank=True, help_text="Source of the rate, for the next person."
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ("state", "-effective_from")
        constraints = [
            models.UniqueConstraint(
                fields=("state", "effective_from"), name="salestax_one_rate_per_state_and_day"
            ),
            models.CheckConstraint(
                condition=Q(rate__gte=0) & Q(rate__lte=20), name="salestax_rate_0_to_20"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.state} {self.rate}% from {self.effective_from}"
