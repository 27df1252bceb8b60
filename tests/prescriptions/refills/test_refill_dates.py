"""The refill checks' dates at the boundary, without a database (``refill_checks`` is pure).

Too soon: 90 pills at 3 a day last 30 days; with ``REFILL_TOO_SOON_FRACTION`` 0.75 a refill is
possible from ceil(30 × 0.75) = 23 days after the fill — on day 23 itself, not on day 22.
Expiry: a prescription is valid through its ``expires_on`` day and refused the day after.
"""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from prescriptions.models import PrescriptionOnFile
from prescriptions.refill_rules import refill_checks

FILLED = date(2026, 3, 2)
EXPIRES = date(2026, 12, 31)


@pytest.fixture
def record(settings):
    settings.REFILL_TOO_SOON_FRACTION = 0.75
    return PrescriptionOnFile(
        daily_dose=Decimal("3"),
        quantity_per_fill=90,
        refills_authorised=3,
        refills_used=1,
        expires_on=EXPIRES,
        last_filled_on=FILLED,
        last_fill_pills=90,
    )


def test_a_refill_is_too_soon_until_the_due_day_and_allowed_on_it(record):
    before = refill_checks(record, today=FILLED + timedelta(days=22))
    assert before.too_soon and before.next_refill_from == FILLED + timedelta(days=23)
    assert before.too_soon_text == "Too soon, from March 25, 2026"
    assert not before.needs_new_prescription
    due = refill_checks(record, today=FILLED + timedelta(days=23))
    assert not due.too_soon and due.refusal == ""


def test_a_prescription_is_valid_through_its_last_day_and_refused_the_next(record):
    last_day = refill_checks(record, today=EXPIRES)
    assert not last_day.expired and last_day.refusal == ""
    after = refill_checks(record, today=EXPIRES + timedelta(days=1))
    assert after.expired and after.needs_new_prescription
    assert "Your prescription expired on December 31, 2026." in after.refusal
