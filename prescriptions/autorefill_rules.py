"""Auto-refill's rules as plain functions of a prescription on file and a date (no writes).

* **Eligible**: a prescription on the patient's account, not a controlled substance, not
  expired, with a refill left for the chosen pack (the pack rule of the refill code).
* **Due date**: never before the too-soon date of the refill code (75 % of the last fill's
  supply used). The first one is that date (or today, when it has passed); after a placement
  the next is the placement day plus the too-soon share of the pack's supply, moved later when
  the fill is counted later than that; a skip moves it one whole supply of the pack later.
* **Consent** lasts ``AUTOREFILL_CONSENT_DAYS`` (365) days, the day it was given included: it is
  valid through ``consent_until`` and lapses the day after.
* **Notice** ``AUTOREFILL_NOTICE_DAYS`` (3) days before each due date.
"""

from __future__ import annotations

import math
from datetime import date, timedelta

from django.conf import settings

from catalog.models import LegalClass

from . import refill_rules as records

#: The latest a patient may move a due date, counted from the date they move it from.
MAX_POSTPONE_DAYS = 60


def notice_days() -> int:
    return int(getattr(settings, "AUTOREFILL_NOTICE_DAYS", 3))


def consent_days() -> int:
    return int(getattr(settings, "AUTOREFILL_CONSENT_DAYS", 365))


def consent_until(given_on: date) -> date:
    """The last day a consent given on ``given_on`` is valid."""
    return given_on + timedelta(days=consent_days() - 1)


def consent_valid(*, until: date | None, today: date) -> bool:
    return until is not None and today <= until


def is_controlled(record) -> bool:
    return record.dosage.product.legal_class == LegalClass.CONTROLLED


def refusal(record, *, tier=None, today: date) -> str:
    """Why this prescription cannot be auto-refilled now ('' when it can). Not 'too soon':
    that only moves the due date."""
    if is_controlled(record):
        return "Controlled substances are never refilled automatically."
    if record.user_id is None:
        return "Only a prescription on your account can be refilled automatically."
    checks = records.refill_checks(record, today=today, refills_needed=_needed(record, tier))
    if checks.expired:
        return f"This prescription expired on {record.expires_on:%B %-d, %Y}; a refill needs a new prescription."
    if checks.refills_left <= 0:
        return "No refills are left on this prescription; a refill needs a new prescription."
    return ""


def _needed(record, tier) -> int:
    return records.refills_for_pack(record=record, pills=tier.quantity) if tier else 1


def too_soon_date(record) -> date | None:
    """The first day the refill code allows the next refill (None: never filled)."""
    return records.refill_checks(record).next_refill_from


def earliest_due(record, *, today: date) -> date:
    """The earliest due date allowed from ``today``: today, or the too-soon date if later."""
    allowed = too_soon_date(record)
    return max(today, allowed) if allowed else today


def pack_supply_days(record, tier) -> int:
    return records.days_supply(pills=tier.quantity, daily_dose=record.daily_dose)


def due_after_placement(record, tier, *, placed_on: date) -> date:
    """The next due date once a refill is placed: when the refill code will allow the next one
    if this fill is counted the day it is placed (moved later if it is counted later)."""
    return placed_on + timedelta(
        days=math.ceil(pack_supply_days(record, tier) * records.too_soon_fraction())
    )


def due_after_skip(record, tier, *, due_on: date) -> date:
    """Skipping a fill: the patient still has this fill's worth, so one whole supply later."""
    return due_on + timedelta(days=max(1, pack_supply_days(record, tier)))


def date_change_refusal(record, *, current: date, wanted: date, until: date, today: date) -> str:
    """Why a patient's new due date is refused ('' when allowed): never before the too-soon
    date or tomorrow, never past the consent, the prescription's expiry or 60 days later."""
    earliest = max(earliest_due(record, today=today), today + timedelta(days=1))
    if wanted < earliest:
        return f"The earliest date for this refill is {earliest:%B %-d, %Y}."
    latest = min(current + timedelta(days=MAX_POSTPONE_DAYS), until, record.expires_on)
    if wanted > latest:
        return f"The latest date you can choose is {latest:%B %-d, %Y}."
    return ""
