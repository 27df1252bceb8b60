"""The refill rule: what a prescription on file allows, and when (issues #16, #21).

* **Pack rule.** A refill is one pack of the prescribed strength. A pack of up to the quantity
  per fill uses one refill; a larger pack uses ``ceil(pack / quantity per fill)`` refills and is
  offered only when that many refills are left.
* **Checks** (``refill_checks``): refills left, not expired, and not too soon: at least
  ``REFILL_TOO_SOON_FRACTION`` (75 %) of the last fill's supply (``pills / daily dose`` days) has
  elapsed. They run before any payment (the Refill button, adding to the cart, placing the
  order: too soon is refused "from <date>"), and again when the pharmacist approves
  (``prescriptions.refill_review``). Nothing is ever clamped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from catalog.models import PackageTier
from catalog.pricing import tier_per_pill_price

from .decisions import ReviewError
from .models import PrescriptionOnFile, PrescriptionOnFileEvent

Event = PrescriptionOnFileEvent.Kind

Event = PrescriptionOnFileEvent.Kind


class RefillError(ReviewError):
    """A refill request or decision that cannot be carried out; ``message`` is fit to show."""


# --- Dates and the rule ------------------------------------------------------------------------


def validity_days() -> int:
    return int(getattr(settings, "PRESCRIPTION_VALIDITY_DAYS", 365))


def too_soon_fraction() -> float:
    return float(getattr(settings, "REFILL_TOO_SOON_FRACTION", 0.75))


def default_expiry(written: date) -> date:
    return written + timedelta(days=validity_days())


def refills_for_pack(*, record: PrescriptionOnFile, pills: int) -> int:
    """How many refills a pack of ``pills`` uses: one per quantity per fill, started."""
    return max(1, math.ceil(pills / record.quantity_per_fill))


def days_supply(*, pills: int, daily_dose: Decimal) -> int:
    return int(Decimal(pills) / Decimal(daily_dose))


@dataclass(frozen=True)
class RefillChecks:
    """What the pharmacist checks before approving a refill, and the verdict."""

    refills_left: int
    expires_on: date
    expired: bool
    last_filled_on: date | None
    days_since_last_fill: int | None
    days_supply: int | None
    next_refill_from: date | None
    too_soon: bool

    @property
    def needs_new_prescription(self) -> bool:
        """Only expiry or used-up refills need a new prescription; too soon just means later."""
        return self.expired or self.refills_left <= 0

    @property
    def too_soon_text(self) -> str:
        return f"Too soon, from {self.next_refill_from:%B %-d, %Y}" if self.too_soon else ""

    @property
    def refusal(self) -> str:
        """The customer-facing reason a refill cannot be approved now ('' when it can)."""
        if self.expired:
            return (
                f"Your prescription expired on {self.expires_on:%B %-d, %Y}. Please ask your prescriber for a new "
                "prescription and order again with it; nothing was charged for this refill."
            )
        if self.refills_left <= 0:
            return (
                "All the refills on your prescription have been used. Please ask your prescriber for a new "
                "prescription and order again with it; nothing was charged for this refill."
            )
        if self.too_soon:
            return (
                f"It is too soon to refill your prescription: your last fill should last until about "
                f"{self.last_filled_on + timedelta(days=self.days_supply):%B %-d, %Y}. You can ask for this refill "
                f"from {self.next_refill_from:%B %-d, %Y}, or send us a new prescription if your dose has changed. "
                "Nothing was charged and the card hold has been released."
            )
        return ""


def refill_checks(
    record: PrescriptionOnFile, *, today: date | None = None, refills_needed: int = 1
) -> RefillChecks:
    today = today or timezone.localdate()
    supply = since = next_from = None
    too_soon = False
    if record.last_filled_on and record.last_fill_pills:
        supply = days_supply(pills=record.last_fill_pills, daily_dose=record.daily_dose)
        since = (today - record.last_filled_on).days
        next_from = record.last_filled_on + timedelta(days=math.ceil(supply * too_soon_fraction()))
        too_soon = today < next_from
    return RefillChecks(
        refills_left=record.refills_left - (refills_needed - 1),
        expires_on=record.expires_on,
        expired=today > record.expires_on,
        last_filled_on=record.last_filled_on,
        days_since_last_fill=since,
        days_supply=supply,
        next_refill_from=next_from,
        too_soon=too_soon,
    )


def refill_packs(record: PrescriptionOnFile) -> list[dict]:
    """The packs of the prescribed strength, each with the refills it uses and whether it may be chosen."""
    packs = []
    for tier in (
        PackageTier.objects.active().filter(dosage_id=record.dosage_id).order_by("quantity")
    ):
        needed = refills_for_pack(record=record, pills=tier.quantity)
        packs.append(
            {
                "tier": tier,
                "refills_needed": needed,
                "allowed": needed <= record.refills_left,
                "default": False,
                "per_pill": tier_per_pill_price(price=tier.price, quantity=tier.quantity),
            }
        )
    # Preselected: the largest pack within the quantity per fill (what was prescribed per fill).
    within = [
        pack
        for pack in packs
        if pack["allowed"] and pack["tier"].quantity <= record.quantity_per_fill
    ]
    if within or packs:
        (within or packs)[-1 if within else 0]["default"] = True
    return packs


def runs_out_on(record: PrescriptionOnFile) -> date | None:
    if not record.last_filled_on or not record.last_fill_pills:
        return None
    return record.last_filled_on + timedelta(
        days=days_supply(pills=record.last_fill_pills, daily_dose=record.daily_dose)
    )
