"""What a receipt needs from a fill, kept on the order line: the prescription number and the date.

The order line is a snapshot of what was sold; when the pharmacy dispenses it from a prescription
on file (the first fill at approval, or a refill when its payment is captured), the prescription
side writes the prescription's number and the fill date there, in the same transaction. The
receipt (``orders.receipts``) then reads only the order's own rows.
"""

from __future__ import annotations

from datetime import date

from orders.models import OrderLine

from .models import PrescriptionOnFile


def rx_number(record: PrescriptionOnFile) -> str:
    """The prescription number the pharmacy gives a prescription on file: it stays for every refill."""
    return f"RX{record.pk:07d}"


def line_mark_filled(*, line_id: int | None, record: PrescriptionOnFile, filled_on: date) -> None:
    """Snapshot the prescription number and fill date on the order line: its receipt shows them."""
    if line_id is not None:
        OrderLine.objects.filter(pk=line_id).update(
            rx_number=rx_number(record), filled_on=filled_on
        )
