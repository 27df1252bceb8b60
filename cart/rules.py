"""The cart's rules, written once: what can be ordered and how much of it.

``cart.services`` calls ``check`` on the cart as it *would* be after a change and refuses the
change with the first breach; ``cart.pricing`` calls it on the cart as it *is* and lists every
breach on the cart page (a limit can be crossed without a change: stock sold, a limit lowered).
Each ``Breach`` words itself for either tense, so the add button and the cart page give the same
reason.

Pure: reads only the objects given (``tier.dosage.product`` loaded).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings

UNORDERABLE_CONTROLLED = "controlled"
UNORDERABLE_WITHDRAWN = "withdrawn"
UNORDERABLE_SOLD_OUT = "sold_out"


def unorderable(tier) -> str:
    """Why a tier cannot be ordered now (one of the ``UNORDERABLE_*`` codes), or ``""``."""
    product = tier.dosage.product
    if product.is_controlled:
        return UNORDERABLE_CONTROLLED
    if not product.is_published or not tier.is_active:
        return UNORDERABLE_WITHDRAWN
    if tier.stock is not None and tier.stock <= 0:
        return UNORDERABLE_SOLD_OUT
    return ""


def unorderable_notice(tier) -> str:
    """The cart line's notice for an unorderable tier ("" when it can be ordered)."""
    return {
        UNORDERABLE_CONTROLLED: "Not available for online order: not included in your total",
        UNORDERABLE_WITHDRAWN: "No longer available: not included in your total",
        UNORDERABLE_SOLD_OUT: "Out of stock: not included in your total",
    }.get(unorderable(tier), "")


def unorderable_refusal(tier) -> str:
    """Why the add button refuses the tier ("" when it can be ordered)."""
    product = tier.dosage.product
    name = f"{product.name} {tier.dosage.strength}, {tier.quantity} pills"
    return {
        UNORDERABLE_CONTROLLED: f"{product.name} is a controlled medicine and is not available for online order.",
        UNORDERABLE_WITHDRAWN: f"{name} is no longer available.",
        UNORDERABLE_SOLD_OUT: f"{name} is out of stock.",
    }.get(unorderable(tier), "")


def label(tier) -> str:
    return f"{tier.dosage.product.name} {tier.dosage.strength}, {tier.quantity} pills"


@dataclass(frozen=True)
class Breach:
    kind: str  # "per_line", "stock", "pills_per_order"
    subject: str  # the line's or the product's name
    limit: int
    amount: int

    def message(self, *, proposed: bool = False) -> str:
        """``proposed``: the wording for a change being refused (rather than the cart as it is)."""
        if self.kind == "per_line":
            if proposed:
                return f"You can order at most {self.limit} packages of {self.subject}."
            return f"{self.subject}: at most {self.limit} packages per line; please lower the quantity."
        if self.kind == "stock":
            if proposed:
                return f"Only {self.limit} packages of {self.subject} are in stock."
            return f"{self.subject}: only {self.limit} in stock; please lower the quantity."
        if proposed:
            return f"{self.subject} is limited to {self.limit:,} pills per order; that would make {self.amount:,}."
        return f"{self.subject}: at most {self.limit:,} pills per order; your cart has {self.amount:,}."


def check(
    lines: Iterable[tuple[object, int]], *, max_packages: int | None = None
) -> tuple[Breach, ...]:
    """Every limit the lines break, in cart order: ``lines`` are ``(tier, packages)`` of orderable lines."""
    if max_packages is None:
        max_packages = settings.CART_MAX_PACKAGES_PER_LINE
    breaches: list[Breach] = []
    pills: dict[int, int] = defaultdict(int)
    products: dict[int, object] = {}
    for tier, packages in lines:
        if packages > max_packages:
            breaches.append(Breach("per_line", label(tier), max_packages, packages))
        if tier.stock is not None and packages > tier.stock:
            breaches.append(Breach("stock", label(tier), tier.stock, packages))
        product = tier.dosage.product
        pills[product.pk] += packages * tier.quantity
        products[product.pk] = product
    for product_id, count in pills.items():
        product = products[product_id]
        limit = product.max_pills_per_order
        if limit is not None and count > limit:
            breaches.append(Breach("pills_per_order", product.name, limit, count))
    return tuple(breaches)
