"""Pricing a cart: the one place that turns cart lines into the figures a customer pays.

A cart stores what the customer chose, never what it costs, so every figure here is read from
the catalog's *current* prices and derived with ``catalog.pricing`` (half-up, to the cent). The
checkout builds its order from ``cart_summary`` so the cart page and the charge always agree.

``summarize_lines`` is the pure part (no database): it takes objects shaped like ``CartLine``
(``id``, ``packages``, ``price_when_added`` and ``tier.dosage.product``), which the tests build
unsaved. ``cart_summary`` loads a cart's lines in one query and hands them to it.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from djmoney.money import Money

from catalog import pricing as catalog_pricing


def format_money(amount: Money) -> str:
    """``$1,234.50``: the one wording of an amount used in notices and messages."""
    symbol = "$" if str(amount.currency) == "USD" else f"{amount.currency} "
    return f"{symbol}{amount.amount:,.2f}"


@dataclass(frozen=True)
class CartLineSummary:
    line_id: int
    tier_id: int
    product_name: str
    product_slug: str
    strength: str
    pack_size: int
    packages: int
    unit_price: Money  # current price of one package
    per_pill: Money
    list_price: Money  # per package
    savings_per_package: Money
    savings_percent: int
    line_total: Money
    line_savings: Money
    requires_prescription: bool
    price_when_added: Money
    price_changed: bool
    available: bool
    notice: str
    pills: int

    @property
    def shows_saving(self) -> bool:
        """Strike the list price through only when the customer really saves."""
        return self.savings_per_package.amount > 0

    @property
    def description(self) -> str:
        """``Baclofen 10mg, 90 pills``: how the line is named in messages."""
        return f"{self.product_name} {self.strength}, {self.pack_size} pills"


@dataclass(frozen=True)
class CartSummary:
    lines: tuple[CartLineSummary, ...]
    subtotal: Money
    savings: Money
    shipping: Money
    total: Money
    item_count: int  # packages of the lines that will be ordered
    has_prescription_items: bool
    problems: tuple[str, ...]  # why checkout is blocked; empty when it is not
    free_shipping_threshold: Money
    free_shipping_remaining: Money  # how much more to spend for free shipping; zero once reached

    @property
    def is_empty(self) -> bool:
        """Nothing that can be ordered (unavailable lines alone do not count)."""
        return self.item_count == 0

    @property
    def can_checkout(self) -> bool:
        return not self.is_empty and not self.problems

    @property
    def available_lines(self) -> tuple[CartLineSummary, ...]:
        """The lines an order is made of."""
        return tuple(line for line in self.lines if line.available)

    @property
    def unavailable_lines(self) -> tuple[CartLineSummary, ...]:
        return tuple(line for line in self.lines if not line.available)


def unavailable_reason(tier) -> str:
    """Why a tier cannot be ordered now, or ``""`` when it can.

    Expects ``tier.dosage.product`` to be loaded. Shared with the services so the cart page and
    the add button refuse for the same reasons.
    """
    product = tier.dosage.product
    if product.is_controlled:
        return "Not available for online order: not included in your total"
    if not product.is_published or not tier.is_active:
        return "No longer available: not included in your total"
    if tier.stock is not None and tier.stock <= 0:
        return "Out of stock: not included in your total"
    return ""


def _as_money(amount, currency: str) -> Money:
    """djmoney's Money (catalog.pricing returns py-moneyed's), so templates format it alike."""
    return Money(amount.amount if hasattr(amount, "amount") else amount, currency)


def _zero(currency: str) -> Money:
    return Money(Decimal("0.00"), currency)


def _summarize_line(line) -> CartLineSummary:
    tier = line.tier
    dosage = tier.dosage
    product = dosage.product
    row = catalog_pricing.tier_price(
        quantity=tier.quantity, price=tier.price, list_price_per_pill=dosage.list_price_per_pill
    )
    packages = int(line.packages)
    currency = str(tier.price.currency)
    line_total = _as_money(catalog_pricing.round_money(Money(row.price.amount * packages, currency)), currency)
    line_savings = _as_money(catalog_pricing.round_money(Money(row.savings.amount * packages, currency)), currency)
    price_when_added = line.price_when_added
    price_changed = price_when_added is not None and price_when_added.amount != tier.price.amount
    reason = unavailable_reason(tier)
    if reason:
        notice = reason
    elif price_changed:
        notice = f"Price changed from {format_money(price_when_added)} to {format_money(row.price)}"
    else:
        notice = ""
    return CartLineSummary(
        line_id=line.id,
        tier_id=tier.id,
        product_name=product.name,
        product_slug=product.slug,
        strength=dosage.strength,
        pack_size=tier.quantity,
        packages=packages,
        unit_price=Money(row.price.amount, currency),
        per_pill=Money(row.per_pill.amount, currency),
        list_price=Money(row.list_price.amount, currency),
        savings_per_package=Money(row.savings.amount, currency),
        savings_percent=row.savings_percent,
        line_total=line_total,
        line_savings=line_savings,
        requires_prescription=product.requires_prescription,
        price_when_added=price_when_added,
        price_changed=price_changed,
        available=not reason,
        notice=notice,
        pills=tier.quantity * packages,
    )


def _problems(lines: Iterable, summaries: Iterable[CartLineSummary], *, max_packages: int) -> tuple[str, ...]:
    """Reasons the customer cannot check out yet, in the order of the cart."""
    problems: list[str] = []
    pills_by_product: dict[int, int] = defaultdict(int)
    products: dict[int, object] = {}
    for line, summary in zip(lines, summaries):
        if not summary.available:
            continue
        tier = line.tier
        if summary.packages > max_packages:
            problems.append(
                f"{summary.description}: at most {max_packages} packages per line; please lower the quantity."
            )
        if tier.stock is not None and summary.packages > tier.stock:
            problems.append(
                f"{summary.description}: only {tier.stock} in stock; please lower the quantity."
            )
        product = tier.dosage.product
        pills_by_product[product.id] += summary.pills
        products[product.id] = product
    for product_id, pills in pills_by_product.items():
        product = products[product_id]
        limit = product.max_pills_per_order
        if limit is not None and pills > limit:
            problems.append(
                f"{product.name}: at most {limit:,} pills per order; your cart has {pills:,}."
            )
    return tuple(problems)


def summarize_lines(
    lines: Iterable,
    *,
    shipping_flat_rate: Decimal | Money,
    free_shipping_threshold: Decimal | Money,
    max_packages_per_line: int | None = None,
    currency: str | None = None,
) -> CartSummary:
    """Price cart lines from their tiers' current prices. Pure: reads only the objects given.

    Unavailable lines stay in ``lines`` (with a notice) but add nothing to the totals. Shipping
    is the flat rate below the threshold, free at or above it, and nothing on an empty cart.
    """
    lines = list(lines)
    currency = currency or (str(lines[0].tier.price.currency) if lines else settings.DEFAULT_CURRENCY)
    if max_packages_per_line is None:
        max_packages_per_line = settings.CART_MAX_PACKAGES_PER_LINE
    flat = shipping_flat_rate.amount if isinstance(shipping_flat_rate, Money) else Decimal(shipping_flat_rate)
    threshold_amount = (
        free_shipping_threshold.amount
        if isinstance(free_shipping_threshold, Money)
        else Decimal(free_shipping_threshold)
    )
    summaries = tuple(_summarize_line(line) for line in lines)
    available = [s for s in summaries if s.available]
    subtotal = _zero(currency)
    savings = _zero(currency)
    for summary in available:
        subtotal = subtotal + summary.line_total
        savings = savings + summary.line_savings
    subtotal = catalog_pricing.round_money(subtotal)
    savings = catalog_pricing.round_money(savings)
    item_count = sum(s.packages for s in available)
    threshold = catalog_pricing.round_money(Money(threshold_amount, currency))
    if item_count == 0 or subtotal.amount >= threshold.amount:
        shipping = _zero(currency)
    else:
        shipping = catalog_pricing.round_money(Money(flat, currency))
    remaining = (
        _zero(currency)
        if subtotal.amount >= threshold.amount
        else catalog_pricing.round_money(Money(threshold.amount - subtotal.amount, currency))
    )
    return CartSummary(
        lines=summaries,
        subtotal=Money(subtotal.amount, currency),
        savings=Money(savings.amount, currency),
        shipping=Money(shipping.amount, currency),
        total=_as_money(catalog_pricing.round_money(Money(subtotal.amount + shipping.amount, currency)), currency),
        item_count=item_count,
        has_prescription_items=any(s.requires_prescription for s in available),
        problems=_problems(lines, summaries, max_packages=max_packages_per_line),
        free_shipping_threshold=Money(threshold.amount, currency),
        free_shipping_remaining=Money(remaining.amount, currency),
    )


def cart_lines_for_pricing(cart):
    """A cart's lines with everything pricing reads, in one query."""
    from .models import CartLine

    return CartLine.objects.filter(cart_id=cart.pk).select_related("tier__dosage__product").order_by(
        "added_at", "id"
    )


def cart_summary(cart) -> CartSummary:
    """Price a cart (or no cart) from the current catalog prices: one query."""
    lines = [] if cart is None or cart.pk is None else list(cart_lines_for_pricing(cart))
    return summarize_lines(
        lines,
        shipping_flat_rate=settings.SHIPPING_FLAT_RATE,
        free_shipping_threshold=settings.FREE_SHIPPING_THRESHOLD,
    )
