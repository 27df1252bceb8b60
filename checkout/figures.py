"""What the customer saw: the checkout page's figures, signed, and what changed since.

"What you see is what you pay": the page carries a signed snapshot of every line and amount it
shows; ``checkout.placement.order_place`` recomputes them from the catalog on the locked cart and
refuses, naming each difference, when they are not the same. The snapshot is only compared,
never charged.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.core import signing
from djmoney.money import Money

from orders.errors import OrderError

#: Kept from when this lived in ``orders``: a page open across a deploy still confirms.
FIGURES_SALT = "orders.checkout-figures"


@dataclass(frozen=True)
class CheckoutChange:
    """One difference between the checkout page the customer saw and the order as it would be now."""

    item: str
    before: str
    after: str

    def __str__(self) -> str:
        return f"{self.item}: {self.before} → {self.after}"


class CheckoutChanged(OrderError):
    """The cart's figures moved since the checkout page was shown; nothing was placed.

    ``figures`` is the signed snapshot of the current figures: posting it back is the customer's
    confirmation of the new order."""

    def __init__(self, *, changes: list[CheckoutChange], figures: str, total: Money):
        super().__init__(
            "Your order has changed since you opened this page. Please check the new figures; "
            "press the button again to confirm them."
        )
        self.changes = changes
        self.figures = figures
        self.total = total


def checkout_figures(summary) -> str:
    """A signed snapshot of what the checkout page shows: each line (pack, packages, price per pack)
    and every amount of the summary for the address and shipping method as entered: subtotal,
    discount, shipping, sales tax (and its rate) and the total. The checkout form carries it back,
    so ``order_place`` can tell whether the order it is about to charge is the one the customer
    saw. It is only ever compared with figures recomputed from the catalog, never charged."""
    return signing.dumps(_figures(summary), salt=FIGURES_SALT, compress=True)


#: The amounts of a snapshot, in the order a change is reported, with their names on the page.
_FIGURE_LABELS = (
    ("subtotal", "Subtotal"),
    ("discount", "Discount"),
    ("shipping", "Shipping"),
    ("tax", "Sales tax"),
    ("total", "Total"),
)


def _figures(summary) -> dict:
    totals = summary.totals
    return {
        "lines": [
            [line.tier_id, line.packages, str(line.unit_price.amount), line.description]
            for line in summary.available_lines
        ],
        "subtotal": str(summary.subtotal.amount),
        "discount": str(summary.discount.amount),
        "shipping": str(summary.shipping.amount),
        "tax": str(summary.tax.amount),
        "tax_rate": str(totals.tax_rate) if totals.tax_known else "",
        "total": str(summary.total.amount),
    }


def _percent(rate: str) -> str:
    return f"{Decimal(rate).normalize():f}%" if rate else "not yet known"


def _figures_changes(*, shown: dict, now: dict) -> list[CheckoutChange]:
    def packs(n) -> str:
        return f"{n} pack{'s' if int(n) != 1 else ''}"

    changes = []
    before = {int(line[0]): line for line in shown.get("lines", [])}
    after = {int(line[0]): line for line in now["lines"]}
    for tier_id, (_, packages, price, description) in before.items():
        if tier_id not in after:
            changes.append(
                CheckoutChange(
                    description,
                    f"{packs(packages)} at ${price}",
                    "no longer available (sold out or withdrawn)",
                )
            )
            continue
        _, new_packages, new_price, _ = after[tier_id]
        if new_packages != packages:
            changes.append(CheckoutChange(description, packs(packages), packs(new_packages)))
        if Decimal(new_price) != Decimal(price):
            changes.append(
                CheckoutChange(description, f"${price} per pack", f"${new_price} per pack")
            )
    for tier_id, (_, packages, price, description) in after.items():
        if tier_id not in before:
            changes.append(
                CheckoutChange(description, "not on the page", f"{packs(packages)} at ${price}")
            )
    for key, label in _FIGURE_LABELS:
        old, new = shown.get(key), now[key]
        if old is None or Decimal(old) != Decimal(new):
            changes.append(
                CheckoutChange(label, f"${old}" if old is not None else "not shown", f"${new}")
            )
    # When the money moved, a rate the staff changed after the page was shown is named too, not
    # only its effect (a new rate on medicines the state exempts changes nothing to confirm).
    if changes and shown.get("tax_rate") and shown.get("tax_rate") != now["tax_rate"]:
        changes.insert(
            0,
            CheckoutChange(
                "Sales tax rate", _percent(shown["tax_rate"]), _percent(now["tax_rate"])
            ),
        )
    return changes


def figures_check(*, shown_figures: str, summary) -> None:
    """Refuse to place an order that differs from the one on the customer's screen."""
    try:
        shown = signing.loads(shown_figures or "", salt=FIGURES_SALT)
    except signing.BadSignature:
        shown = {}
    now = _figures(summary)
    changes = _figures_changes(shown=shown if isinstance(shown, dict) else {}, now=now)
    if changes:
        raise CheckoutChanged(
            changes=changes, figures=checkout_figures(summary), total=summary.total
        )
