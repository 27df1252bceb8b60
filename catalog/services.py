"""Price-changing workflows used by the admin (and usable from a shell or a task).

Each price change is saved tier by tier inside one transaction, so simple-history writes one
record per tier with the acting user: a bulk ``QuerySet.update`` would leave no audit trail.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.db import router, transaction
from djmoney.money import Money

from . import pricing
from .models import Dosage, PackageTier, lowest_price_lock
from .pricing import format_money


class PriceChangeMode:
    PERCENT = "percent"
    AMOUNT = "amount"
    CHOICES = ((PERCENT, "By a percentage (+/-)"), (AMOUNT, "By a fixed amount (+/-)"))


class PriceChangeRefused(Exception):
    """The change would give at least one pack a price of zero or less; nothing was changed."""

    def __init__(self, rows: Sequence[PriceChangeRow]):
        self.rows = list(rows)
        names = ", ".join(row.label for row in self.rows[:5])
        more = f" and {len(self.rows) - 5} more" if len(self.rows) > 5 else ""
        super().__init__(
            f"Nothing was changed: the new price would be zero or less for {names}{more}."
        )


@dataclass(frozen=True)
class PriceChangeRow:
    tier: PackageTier
    old_price: Money
    new_price: Money

    @property
    def label(self) -> str:
        return f"{self.tier} ({self.tier.sku})"

    @property
    def old_per_pill(self) -> Money:
        return pricing.tier_per_pill_price(price=self.old_price, quantity=self.tier.quantity)

    @property
    def new_per_pill(self) -> Money | None:
        if self.new_price.amount <= 0:
            return None
        return pricing.tier_per_pill_price(price=self.new_price, quantity=self.tier.quantity)

    @property
    def refused(self) -> bool:
        return self.new_price.amount <= 0


def changed_price(*, price: Money, mode: str, value: Decimal) -> Money:
    """The price after a percentage or fixed change, rounded half-up to the cent."""
    if mode == PriceChangeMode.PERCENT:
        raw = Money(price.amount * (Decimal(100) + value) / Decimal(100), price.currency)
    elif mode == PriceChangeMode.AMOUNT:
        raw = Money(price.amount + value, price.currency)
    else:
        raise ValueError(f"Unknown price change mode {mode!r}.")
    return pricing.round_money(raw)


def tiers_price_change_preview(
    *, tiers: Iterable[PackageTier], mode: str, value: Decimal
) -> list[PriceChangeRow]:
    """What each tier would cost after the change; nothing is saved."""
    return [
        PriceChangeRow(
            tier=t,
            old_price=t.price,
            new_price=changed_price(price=t.price, mode=mode, value=value),
        )
        for t in tiers
    ]


def tiers_bulk_change_prices(
    *, tier_ids: Iterable[int], mode: str, value: Decimal, user
) -> list[PriceChangeRow]:
    """Change the price of every given tier, all or none.

    The tiers are locked and re-read inside the transaction, so the change applies to the
    prices in force at confirmation, not to whatever the preview page showed earlier.
    Raises ``PriceChangeRefused`` (and changes nothing) if any new price would be ≤ 0.
    """
    tier_ids = list(tier_ids)
    with transaction.atomic():
        # Products before tiers, the order every tier write takes its locks in (``lowest_price_kept``):
        # a concurrent queryset update of the same packs cannot deadlock with this change.
        lowest_price_lock(
            using=router.db_for_write(PackageTier),
            tiers=PackageTier.objects.filter(pk__in=tier_ids),
        )
        tiers = list(
            PackageTier.objects.select_for_update(of=("self",))
            .filter(pk__in=tier_ids)
            .select_related("dosage__product")
            .order_by("pk")
        )
        rows = tiers_price_change_preview(tiers=tiers, mode=mode, value=value)
        refused = [row for row in rows if row.refused]
        if refused:
            raise PriceChangeRefused(refused)
        changed = []
        for row in rows:
            if row.new_price == row.old_price:
                continue
            row.tier.price = row.new_price
            row.tier._history_user = user
            row.tier.save(update_fields=["price", "price_currency"])
            changed.append(row)
    return changed


def dosage_price_warnings(
    *, dosage: Dosage, tiers: Sequence[PackageTier] | None = None
) -> list[str]:
    """Pricing that is allowed but probably a mistake, in words staff can act on.

    Looks at the dosage's active tiers: a pack priced above its list price shows no saving,
    and a larger pack costing more per pill than a smaller one punishes buying in bulk.
    """
    if tiers is None:
        tiers = list(dosage.tiers.filter(is_active=True).order_by("quantity"))
    else:
        tiers = sorted((t for t in tiers if t.is_active), key=lambda t: t.quantity)
    warnings: list[str] = []
    for tier in tiers:
        list_price = pricing.tier_list_price(
            list_price_per_pill=dosage.list_price_per_pill, quantity=tier.quantity
        )
        if tier.price.amount > list_price.amount:
            warnings.append(
                f"{dosage} × {tier.quantity} costs {format_money(tier.price)}, above its list price "
                f"{format_money(list_price)}: no saving shown to customers."
            )
    for index, smaller in enumerate(tiers):
        for larger in tiers[index + 1 :]:
            if pricing.cheaper_per_pill(
                (smaller.quantity, smaller.price), (larger.quantity, larger.price)
            ):
                warnings.append(
                    f"{dosage}: the {larger.quantity}-pill pack costs more per pill "
                    f"({format_money(larger.per_pill_price)}) than the {smaller.quantity}-pill pack "
                    f"({format_money(smaller.per_pill_price)})."
                )
    return warnings
