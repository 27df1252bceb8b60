"""The table behind the tax seam: ``TableTaxCalculator`` implements ``cart.calculations.TaxCalculator``.

It finds the state's rate in force today and lets ``RateTax`` (pure) compute; a state with no row
has no sales tax. A tax service (Stripe Tax, Avalara) would be another class with the same
``quote`` method, chosen in ``orders.pricing_inputs``; nothing else would change.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from django.utils import timezone
from djmoney.money import Money

from cart.calculations import RateTax, TaxableLine, TaxQuote

from .models import TaxRate


def tax_rate_in_force(*, state: str, on: date | None = None) -> RateTax:
    """The rate charged in ``state`` on ``on`` (today): the latest row effective by then."""
    on = on or timezone.localdate()
    row = (
        TaxRate.objects.filter(state=state, effective_from__lte=on)
        .order_by("-effective_from")
        .values("rate", "otc_exempt", "shipping_taxable")
        .first()
    )
    if row is None:
        return RateTax(state=state, rate=Decimal("0"))
    return RateTax(state=state, **row)


class TableTaxCalculator:
    """The staff's rate table (``TaxRate``), read once per quote."""

    def __init__(self, *, on: date | None = None):
        self.on = on

    def quote(self, *, lines: Sequence[TaxableLine], shipping: Money, state: str) -> TaxQuote:
        return tax_rate_in_force(state=state, on=self.on).quote(
            lines=lines, shipping=shipping, state=state
        )
