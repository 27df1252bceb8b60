"""Reading the price audit trail that simple-history keeps on Dosage and PackageTier.

Every save of a tier or a dosage (admin forms, list edits, bulk actions, CSV imports) writes a
historical row with the acting user, so the trail is complete without any extra bookkeeping;
this module only turns those rows into the figures staff and regulators ask for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Min, OuterRef, Q, Subquery
from django.utils import timezone
from djmoney.money import Money

from .models import Dosage, PackageTier, Product

HistoricalTier = PackageTier.history.model
HistoricalDosage = Dosage.history.model

# The fields whose changes are prices (or decide whether a price is on sale).
TIER_PRICE_FIELDS = ("price", "is_active")
DOSAGE_PRICE_FIELDS = ("list_price_per_pill",)
FIELD_LABELS = {
    "price": "price",
    "is_active": "active",
    "list_price_per_pill": "list price per pill",
}

# The history page is for people; beyond this many changes, staff should export instead.
MAX_CHANGES_SHOWN = 500


def tiers_lowest_prices(
    *, tiers: Iterable[PackageTier], days: int = 30, now: dt.datetime | None = None
) -> dict[int, Money]:
    """Lowest price each tier had at any moment in the last ``days`` days, in one query.

    The price in force when the window opened counts (the latest record at or before the
    start), as does every record inside the window. A tier without any history (loaded by
    raw SQL, say) falls back to its current price.
    """
    tiers = list(tiers)
    if not tiers:
        return {}
    now = now or timezone.now()
    start = now - dt.timedelta(days=days)
    in_force_at_start = (
        HistoricalTier.objects.filter(id=OuterRef("id"), history_date__lte=start)
        .order_by("-history_date", "-history_id")
        .values("history_id")[:1]
    )
    rows = (
        HistoricalTier.objects.filter(id__in=[t.pk for t in tiers])
        .filter(
            Q(history_date__gt=start, history_date__lte=now)
            | Q(history_id=Subquery(in_force_at_start))
        )
        .order_by()
        .values("id")
        .annotate(lowest=Min("price"))
    )
    lowest = {row["id"]: row["lowest"] for row in rows}
    return {
        t.pk: Money(lowest[t.pk], t.price.currency) if lowest.get(t.pk) is not None else t.price
        for t in tiers
    }


def tier_lowest_price(
    *, tier: PackageTier, days: int = 30, now: dt.datetime | None = None
) -> Money:
    """Lowest price the tier had at any moment in the last ``days`` days (see above)."""
    return tiers_lowest_prices(tiers=[tier], days=days, now=now)[tier.pk]


@dataclass(frozen=True)
class PriceChange:
    """One line of a product's price history."""

    when: dt.datetime
    who: str
    subject: str
    field: str
    old: object
    new: object
    kind: str  # "created", "first recorded", "changed" or "deleted"


def _who(record) -> str:
    user = record.history_user
    return str(user) if user is not None else "system"


def _changes(records: list, fields: tuple[str, ...], subject) -> list[PriceChange]:
    """Diff each record against the previous record of the same object (records sorted)."""
    changes: list[PriceChange] = []
    previous = None
    for record in records:
        if previous is None or previous.id != record.id:
            previous = None
        if record.history_type == "+" or previous is None:
            # A first record that is a change: the object predates its history (a fixture);
            # the old value is unknown, so show the value it was set to.
            kind = "created" if record.history_type == "+" else "first recorded"
            for field in fields:
                changes.append(
                    PriceChange(
                        record.history_date,
                        _who(record),
                        subject(record),
                        FIELD_LABELS[field],
                        None,
                        getattr(record, field),
                        kind,
                    )
                )
        elif record.history_type == "-":
            changes.append(
                PriceChange(
                    record.history_date,
                    _who(record),
                    subject(record),
                    "pack",
                    "on sale",
                    "deleted",
                    "deleted",
                )
            )
        else:
            delta = record.diff_against(previous, included_fields=list(fields))
            for change in delta.changes:
                changes.append(
                    PriceChange(
                        record.history_date,
                        _who(record),
                        subject(record),
                        FIELD_LABELS[change.field],
                        change.old,
                        change.new,
                        "changed",
                    )
                )
        previous = record
    return changes


def product_price_changes(*, product: Product, limit: int = MAX_CHANGES_SHOWN) -> list[PriceChange]:
    """Every price event of a product's dosages and tiers, newest first, in three queries.

    Deleted dosages and tiers are included: the trail is read from the history tables, keyed
    by the dosage ids that ever belonged to the product.
    """
    dosage_records = list(
        HistoricalDosage.objects.filter(product_id=product.pk)
        .select_related("history_user")
        .order_by("id", "history_date", "history_id")
    )
    strengths = {r.id: r.strength for r in dosage_records}
    # Rows loaded by fixtures (loaddata) have no history of their own yet.
    strengths.update(Dosage.objects.filter(product_id=product.pk).values_list("id", "strength"))
    tier_records = list(
        HistoricalTier.objects.filter(dosage_id__in=list(strengths))
        .select_related("history_user")
        .order_by("id", "history_date", "history_id")
    )
    changes = _changes(dosage_records, DOSAGE_PRICE_FIELDS, lambda r: f"{r.strength} (dosage)")
    changes += _changes(
        tier_records,
        TIER_PRICE_FIELDS,
        lambda r: f"{strengths.get(r.dosage_id, '?')} × {r.quantity} ({r.sku})",
    )
    changes.sort(key=lambda c: c.when, reverse=True)
    return changes[:limit]
