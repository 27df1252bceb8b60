"""Pricing a cart: cart lines, at the catalog's *current* prices, through ``cart.calculations``.

A cart stores what the customer chose, never what it costs. This module reads the lines, hands
them to ``cart.calculations.calculate`` (the one module that adds money) and to ``cart.rules``
(the one set of cart limits), and shapes the result for the cart and checkout pages. The
checkout builds its order from ``cart_summary`` so the cart page and the charge always agree.

``summarize_lines`` is the pure part (no database): it takes objects shaped like ``CartLine``
(``id``, ``packages``, ``price_when_added`` and ``tier.dosage.product``), which the tests build
unsaved. ``cart_summary`` loads a cart's lines in one query and hands them to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal

from django.conf import settings
from djmoney.money import Money

from catalog import pricing as catalog_pricing
from discounts.services import DiscountRefused, discount_terms_for
from pharmacy.prepared import PreparedQuery

from . import calculations, rules
from .calculations import format_money  # re-exported: the one money formatter


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
    discount: Money  # this line's share of a discount code
    tax: Money  # this line's share of the sales tax (zero until a state is known)
    legal_class: str
    product_id: int
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
    totals: calculations.Totals  # every figure, as the calculation module computed them
    item_count: int  # packages of the lines that will be ordered
    has_prescription_items: bool
    problems: tuple[str, ...]  # why checkout is blocked; empty when it is not
    free_shipping_threshold: Money
    free_shipping_remaining: Money  # how much more to spend for free shipping; zero once reached
    entered_code: str = ""  # the discount code kept on the cart, whether or not it applies now

    @property
    def discount(self) -> Money:
        return self.totals.discount

    @property
    def tax(self) -> Money:
        return self.totals.tax

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
    """Why a tier cannot be ordered now, or ``""`` when it can (the words of ``cart.rules``)."""
    return rules.unorderable_notice(tier)


def _line_input(line) -> calculations.LineInput:
    tier = line.tier
    dosage = tier.dosage
    price = tier.price  # djmoney builds a new Money on every read of the field
    currency = str(price.currency)
    return calculations.LineInput(
        key=line.id,
        unit_price=price,
        list_price=calculations.money(
            catalog_pricing.tier_list_price(
                list_price_per_pill=dosage.list_price_per_pill, quantity=tier.quantity
            ),
            currency,
        ),
        packages=int(line.packages),
        legal_class=dosage.product.legal_class,
        product_id=dosage.product_id,
    )


def _summarize_line(line, figures: calculations.LineFigures | None, reason: str) -> CartLineSummary:
    """``reason``: ``unavailable_reason(line.tier)``, which the caller has already worked out."""
    tier = line.tier
    dosage = tier.dosage
    product = dosage.product
    price = tier.price  # djmoney builds a new Money on every read of the field
    row = catalog_pricing.tier_price(
        quantity=tier.quantity, price=price, list_price_per_pill=dosage.list_price_per_pill
    )
    packages = int(line.packages)
    currency = str(price.currency)
    zero = calculations.zero(currency)
    price_when_added = line.price_when_added
    price_changed = price_when_added is not None and price_when_added.amount != price.amount
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
        line_total=figures.line_total
        if figures
        else calculations.money(row.price.amount * packages, currency),
        line_savings=figures.line_savings
        if figures
        else calculations.money(row.savings.amount * packages, currency),
        discount=figures.discount if figures else zero,
        tax=figures.tax if figures else zero,
        legal_class=product.legal_class,
        product_id=product.pk,
        requires_prescription=product.requires_prescription,
        price_when_added=price_when_added,
        price_changed=price_changed,
        available=not reason,
        notice=notice,
        pills=tier.quantity * packages,
    )


def summarize_lines(
    lines: Iterable,
    *,
    shipping_flat_rate: Decimal | Money,
    free_shipping_threshold: Decimal | Money,
    max_packages_per_line: int | None = None,
    currency: str | None = None,
    method: str = calculations.STANDARD,
    discount: calculations.DiscountRule | None = None,
    tax: calculations.TaxCalculator | None = None,
    state: str = "",
    discount_refusal: str = "",
) -> CartSummary:
    """Price cart lines from their tiers' current prices. Pure: reads only the objects given.

    ``discount_refusal``: why the code entered cannot be used (unknown, expired, used up); like a
    code that does not fit these lines, it blocks checkout until the customer removes the code.

    Unavailable lines stay in ``lines`` (with a notice) but add nothing to the totals. The
    figures are ``cart.calculations``'; the problems are ``cart.rules``'.
    """
    lines = list(lines)
    currency = currency or (
        str(lines[0].tier.price.currency) if lines else settings.DEFAULT_CURRENCY
    )
    flat = (
        shipping_flat_rate.amount
        if isinstance(shipping_flat_rate, Money)
        else Decimal(shipping_flat_rate)
    )
    threshold = (
        free_shipping_threshold.amount
        if isinstance(free_shipping_threshold, Money)
        else Decimal(free_shipping_threshold)
    )
    reasons = [unavailable_reason(line.tier) for line in lines]
    orderable = [line for line, reason in zip(lines, reasons) if not reason]
    totals = calculations.calculate(
        lines=[_line_input(line) for line in orderable],
        currency=currency,
        policy=calculations.ShippingPolicy(
            flat_rate=flat,
            free_threshold=threshold,
            express_surcharge=calculations.shipping_policy().express_surcharge,
        ),
        method=method,
        discount=discount,
        tax=tax,
        state=state,
    )
    by_key = {figures.key: figures for figures in totals.lines}
    summaries = tuple(
        _summarize_line(line, by_key.get(line.id), reason) for line, reason in zip(lines, reasons)
    )
    breaches = rules.check(
        ((line.tier, int(line.packages)) for line in orderable), max_packages=max_packages_per_line
    )
    return CartSummary(
        lines=summaries,
        subtotal=totals.subtotal,
        savings=totals.savings,
        shipping=totals.shipping,
        total=totals.total,
        totals=totals,
        item_count=totals.item_count,
        has_prescription_items=any(s.requires_prescription for s in summaries if s.available),
        problems=tuple(breach.message() for breach in breaches)
        + tuple(p for p in (discount_refusal, totals.discount_refusal) if p),
        free_shipping_threshold=totals.free_shipping_threshold,
        free_shipping_remaining=totals.free_shipping_remaining,
    )


#: What pricing reads of a line besides the line itself (``cart.services`` loads the same).
PRICING_RELATED = "tier__dosage__product"


def _lines_of_cart(cart_id: int):
    from .models import CartLine

    return (
        CartLine.objects.filter(cart_id=cart_id)
        .select_related(PRICING_RELATED)
        .order_by("added_at", "id")
    )


_LINES_OF_CART = PreparedQuery(_lines_of_cart, "cart_id")


def cart_lines_for_pricing(cart) -> list:
    """A cart's lines with everything pricing reads, in cart order, in one query (its SQL built
    once per process: ``pharmacy.prepared``)."""
    return _LINES_OF_CART(cart_id=cart.pk)


def cart_discount(
    cart, *, email: str | None = None
) -> tuple[calculations.DiscountRule | None, str]:
    """The rule of the code entered in the cart, or the reason it cannot be used now (the
    per-customer limit counts the cart's account, if signed in, and ``email``'s mailbox)."""
    code = getattr(cart, "discount_code", "") if cart is not None else ""
    if not code:
        return None, ""
    try:
        terms = discount_terms_for(code=code, email=email, user_id=getattr(cart, "user_id", None))
        return calculations.DiscountRule.from_json(terms), ""
    except DiscountRefused as refused:
        return None, refused.message


def cart_summary(
    cart,
    *,
    lines: list | None = None,
    method: str = calculations.STANDARD,
    tax: calculations.TaxCalculator | None = None,
    state: str = "",
    email: str | None = None,
) -> CartSummary:
    """Price a cart (or no cart) from the current catalog prices and its discount code.

    ``method``, ``tax``, ``state`` and ``email`` (for per-customer code limits) are what the
    checkout knows beyond the cart. ``lines``: the cart's lines as ``cart_lines_for_pricing``
    loads them, when the caller already has them (``cart.services.cart_and_lines_for_request``
    reads them with the cart in one query); otherwise they are read here.
    """
    if cart is None or cart.pk is None:
        lines = []
    elif lines is None:
        lines = cart_lines_for_pricing(cart)
    discount, discount_refusal = cart_discount(cart, email=email)
    summary = summarize_lines(
        lines,
        shipping_flat_rate=settings.SHIPPING_FLAT_RATE,
        free_shipping_threshold=settings.FREE_SHIPPING_THRESHOLD,
        method=method,
        discount=discount,
        tax=tax,
        state=state,
        discount_refusal=discount_refusal,
    )
    return replace(
        summary, entered_code=getattr(cart, "discount_code", "") if cart is not None else ""
    )
