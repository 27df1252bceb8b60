"""Load the state sales-tax table shipped in ``salestax/data/state_rates_2025.csv`` (docs/money.md,
"Sales tax table"): one row per state, effective 1 January 2025.

Idempotent and never overwrites: a state that already has a row for that day keeps the staff's
own figures, so ``make run`` can call it at every start.
"""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal
from pathlib import Path

from django.core.management.base import BaseCommand
from django.db import transaction

from salestax.models import TaxRate

TABLE = Path(__file__).resolve().parents[2] / "data" / "state_rates_2025.csv"
EFFECTIVE_FROM = date(2025, 1, 1)
SOURCE = "State base rate as of 1 Jan 2025 (Tax Foundation, State and Local Sales Tax Rates, 2025)"


class Command(BaseCommand):
    help = "Load the shipped state sales-tax table (rows already present are kept as they are)."

    def handle(self, *args, **options):
        added = 0
        with TABLE.open(newline="") as handle, transaction.atomic():
            for row in csv.DictReader(handle):
                _, created = TaxRate.objects.get_or_create(
                    state=row["state"],
                    effective_from=EFFECTIVE_FROM,
                    defaults={
                        "rate": Decimal(row["rate"]),
                        "otc_exempt": row["otc_exempt"] == "yes",
                        "shipping_taxable": row["shipping_taxable"] == "yes",
                        "note": f"{SOURCE}. {row['note']}".strip()[:200],
                    },
                )
                added += created
        self.stdout.write(f"Sales tax table: {added} state rates added.")
