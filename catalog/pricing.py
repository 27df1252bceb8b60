"""Price maths for package tiers: pure functions, no database.

Every rounding in the shop happens here and is half-up (``ROUND_HALF_UP``): money to the cent,
savings to a whole percent. The storefront, the cart, the admin and the orders all call these
functions, so a figure shown anywhere is the figure charged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from moneyed import Money

ROUNDING = ROUND_HALF_UP
CENT = Decimal("0.01")
WHOLE = Decimal("1")


def round_money(amount: Money) -> Money:
    """Round a Money to the cent, half-up."""
    return Money(amount.amount.quantize(CENT, rounding=ROUNDING), amount.currency)


def format_money(value: Money | None) -> str:
    """``$1,234.50`` (``-$3.00``): the one text form of an amount, for notices, emails and admin.

    Amounts that are not whole cents (per-pill list prices) keep five places. Lives here, the
    lowest money module, so catalog, cart, orders and the emails all word amounts alike.
    """
    if value is None:
        return "—"
    amount = value.amount
    places = 2 if amount == amount.quantize(CENT) else 5
    symbol = "$" if str(value.currency) == "USD" else f"{value.currency} "
    sign = "-" if amount < 0 else ""
    return f"{sign}{symbol}{abs(amount):,.{places}f}"


def tier_per_pill_price(*, price: Money, quantity: int) -> Money:
    """What one pill costs in this pack, as shown to the customer."""
    if quantity <= 0:
        raise ValueError("A pack holds at least one pill.")
    return round_money(Money(price.amount / Decimal(quantity), price.currency))


def tier_list_price(*, list_price_per_pill: Money, quantity: int) -> Money:
    """The undiscounted price of the pack: quantity times the dosage's unrounded list price."""
    if quantity <= 0:
        raise ValueError("A pack holds at least one pill.")
    return round_money(Money(list_price_per_pill.amount * quantity, list_price_per_pill.currency))


def tier_savings_percent(*, price: Money, list_price: Money) -> int:
    """Whole percent saved against the list price; 0 when the price is at or above list."""
    if list_price.amount <= 0 or price.amount >= list_price.amount:
        return 0
    saved = (Decimal(1) - price.amount / list_price.amount) * 100
    return int(saved.quantize(WHOLE, rounding=ROUNDING))


def tier_savings_amount(*, price: Money, list_price: Money) -> Money:
    """Money saved against the list price; zero when there is no saving."""
    if price.amount >= list_price.amount:
        return Money(0, price.currency)
    return round_money(list_price - price)


def cheaper_per_pill(a: tuple[int, Money], b: tuple[int, Money]) -> bool:
    """Is pack ``a`` (quantity, price) strictly cheaper per pill than pack ``b``?

    Compared exactly by cross-multiplying, so two packs that round to the same cent are
    still told apart.
    """
    (qa, pa), (qb, pb) = a, b
    return pa.amount * qb < pb.amount * qa


def best_per_pill_index(packs: Sequence[tuple[int, Money]]) -> int | None:
    """Index of the pack with the lowest per-pill price; on a tie, the larger pack wins."""
    best: int | None = None
    for index, pack in enumerate(packs):
        if best is None:
            best = index
            continue
        current = packs[best]
        if (
            cheaper_per_pill(pack, current)
            or not cheaper_per_pill(current, pack)
            and pack[0] > current[0]
        ):
            best = index
    return best


@dataclass(frozen=True, slots=True)
class TierPrice:
    """The figures of one price-table row."""

    quantity: int
    price: Money
    per_pill: Money
    list_price: Money
    savings_percent: int
    savings: Money
    best_per_pill: bool

    @property
    def shows_saving(self) -> bool:
        """Strike through the list price only when the customer really saves."""
        return self.savings_percent > 0 or self.savings.amount > 0


def tier_price(
    *, quantity: int, price: Money, list_price_per_pill: Money, best: bool = False
) -> TierPrice:
    list_price = tier_list_price(list_price_per_pill=list_price_per_pill, quantity=quantity)
    return TierPrice(
        quantity=quantity,
        price=price,
        per_pill=tier_per_pill_price(price=price, quantity=quantity),
        list_price=list_price,
        savings_percent=tier_savings_percent(price=price, list_price=list_price),
        savings=tier_savings_amount(price=price, list_price=list_price),
        best_per_pill=best,
    )


def price_table(
    *, list_price_per_pill: Money, packs: Sequence[tuple[int, Money]]
) -> list[TierPrice]:
    """All rows of one dosage's price table, in the order given, with the best pack marked."""
    best = best_per_pill_index(packs)
    return [
        tier_price(quantity=q, price=p, list_price_per_pill=list_price_per_pill, best=(i == best))
        for i, (q, p) in enumerate(packs)
    ]
