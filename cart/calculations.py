"""An order's money: the one module that adds amounts together.

From lines carrying a price per package (the catalog's *current* price for a cart, the order's
*snapshot* for an order) ``calculate`` derives every figure a customer sees or pays: line totals
(through ``catalog.pricing``), subtotal, savings against list prices, the discount, shipping, sales
tax and the total. It returns one frozen ``Totals``; the total is built from the other figures in
one place, so no page, email or PaymentIntent can show a total that disagrees with its own lines.

Who calls it: the cart page (``cart.pricing.cart_summary``), the checkout page and order
placement (``orders.services``), approval with changes (``orders.prescription_decisions``), refunds
(``refund_split``) and the emails, which read the figures snapshotted on the order from it.

Why it lives in ``cart`` and not in ``orders``: the cart page must show the discount a customer
typed in, and ``cart`` sits below ``orders`` (arrows only go down: orders → cart → catalog).
The module is pure (no database, no settings except the defaults helper ``shipping_policy``),
so ``orders`` uses it for snapshots just as ``cart`` does for live prices. Discounts and tax come
in as plain data and a small protocol, never as models:

* ``DiscountRule`` is a frozen description of a code (``discounts`` turns a ``DiscountCode`` row
  into one; an order keeps it as JSON so approval with changes recomputes with the same rule).
* ``TaxCalculator`` is the tax seam: ``salestax.services.TableTaxCalculator`` reads the staff's
  rate table; a tax service (e.g. Stripe Tax) could implement the same method later.
  ``RateTax`` is the pure calculator for one known rate, which is what an order snapshots.

Compared with Saleor's ``checkout/calculations.py`` (separate ``checkout_subtotal``,
``checkout_shipping_price``, ``checkout_total`` functions, each asking the plugin manager and
caching prices on a mutable checkout row): here one call produces every figure at once from
immutable input, so the subtotal, shipping and total cannot come from different moments, and
the same function re-prices an order after a pharmacist's change.

Rounding: everything half-up to the cent (``catalog.pricing.round_money``). A percent discount is
rounded per line; a fixed discount is spread over the eligible lines by largest remainder so the
per-line shares add up exactly; tax is computed once on the taxable goods (and once on shipping)
and then spread over the lines the same way.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from typing import Protocol

from djmoney.money import Money

from catalog import pricing as catalog_pricing
from catalog.pricing import format_money  # noqa: F401  (the one money formatter, re-exported)

ZERO = Decimal("0.00")
CENT = Decimal("0.01")
EXPRESS_SURCHARGE = Decimal("15.00")
STANDARD, EXPRESS = "standard", "express"

# Legal classes, as in catalog.models.LegalClass (repeated as strings to keep this module pure).
GENERAL_SALE, PHARMACY, PRESCRIPTION, CONTROLLED = "general_sale", "pharmacy", "prescription", "controlled"
OTC_CLASSES = frozenset({GENERAL_SALE, PHARMACY})


# --- Money helpers: the only place amounts are added ---------------------------------------------


def money(amount, currency: str) -> Money:
    """djmoney's Money rounded half-up to the cent (catalog.pricing returns py-moneyed's)."""
    value = amount.amount if hasattr(amount, "amount") else Decimal(amount)
    return Money(catalog_pricing.round_money(Money(value, currency)).amount, currency)


def zero(currency: str) -> Money:
    return Money(ZERO, currency)


def add(amounts: Iterable[Money], currency: str) -> Money:
    """The sum of some amounts (in one currency), to the cent."""
    total = ZERO
    for amount in amounts:
        total += amount.amount
    return money(total, currency)


def subtract(a: Money, b: Money) -> Money:
    return money(a.amount - b.amount, str(a.currency))


def _spread(total: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """Split ``total`` (cents exact) over ``weights`` proportionally, shares adding up exactly."""
    if not weights or total == 0:
        return [ZERO for _ in weights]
    whole = sum(weights)
    if whole <= 0:
        return [ZERO for _ in weights]
    raw = [total * w / whole for w in weights]
    shares = [r.quantize(CENT, rounding=ROUND_FLOOR) for r in raw]
    left = int(((total - sum(shares)) / CENT).to_integral_value())
    order = sorted(range(len(raw)), key=lambda i: (raw[i] - shares[i]), reverse=True)
    for i in order[:left]:
        shares[i] += CENT
    return shares


# --- Input ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineInput:
    """One line to price: a cart line (current price) or an order line (snapshot price)."""

    key: object
    unit_price: Money  # price of one package
    list_price: Money  # undiscounted price of one package
    packages: int
    legal_class: str
    product_id: int | None = None


@dataclass(frozen=True)
class ShippingPolicy:
    flat_rate: Decimal
    free_threshold: Decimal
    express_surcharge: Decimal = EXPRESS_SURCHARGE


def shipping_policy() -> ShippingPolicy:
    """The shop's shipping rates from settings (flat rate, free threshold, express surcharge)."""
    from django.conf import settings

    return ShippingPolicy(
        flat_rate=Decimal(settings.SHIPPING_FLAT_RATE),
        free_threshold=Decimal(settings.FREE_SHIPPING_THRESHOLD),
        express_surcharge=Decimal(getattr(settings, "SHIPPING_EXPRESS_SURCHARGE", EXPRESS_SURCHARGE)),
    )


class DiscountKind:
    PERCENT = "percent"
    FIXED = "fixed"
    FREE_SHIPPING = "free_shipping"


@dataclass(frozen=True)
class DiscountRule:
    """What a discount code does, as plain data (``discounts`` builds it from its model)."""

    code: str
    kind: str
    value: Decimal = ZERO  # percent (0–100) or a fixed amount
    min_subtotal: Decimal = ZERO
    legal_classes: frozenset[str] = frozenset({GENERAL_SALE, PHARMACY})
    product_ids: frozenset[int] = frozenset()  # empty: any product of those classes

    def applies_to(self, line: LineInput) -> bool:
        if line.legal_class == CONTROLLED or line.legal_class not in self.legal_classes:
            return False
        return not self.product_ids or line.product_id in self.product_ids

    @property
    def shown_per_line(self) -> bool:
        """A percent comes off each line; a fixed amount is one line of the order."""
        return self.kind == DiscountKind.PERCENT

    def as_json(self) -> dict:
        return {
            "code": self.code,
            "kind": self.kind,
            "value": str(self.value),
            "min_subtotal": str(self.min_subtotal),
            "legal_classes": sorted(self.legal_classes),
            "product_ids": sorted(self.product_ids),
        }

    @classmethod
    def from_json(cls, data: dict | None) -> DiscountRule | None:
        if not data:
            return None
        return cls(
            code=data["code"],
            kind=data["kind"],
            value=Decimal(data["value"]),
            min_subtotal=Decimal(data["min_subtotal"]),
            legal_classes=frozenset(data["legal_classes"]),
            product_ids=frozenset(data["product_ids"]),
        )


@dataclass(frozen=True)
class TaxableLine:
    key: object
    amount: Money  # what the customer pays for the line, after its discount
    legal_class: str


@dataclass(frozen=True)
class TaxQuote:
    """Tax on the goods and on shipping, and what to store to charge it again identically."""

    goods_tax: Money
    shipping_tax: Money
    rate: Decimal  # percent, for the "Sales tax (8.875%)" label; 0 when none
    snapshot: dict = field(default_factory=dict)
    taxed_keys: frozenset = frozenset()  # the lines the goods tax was charged on


class TaxCalculator(Protocol):
    """The tax seam. One method: the tax on these lines and this shipping to this state."""

    def quote(self, *, lines: Sequence[TaxableLine], shipping: Money, state: str) -> TaxQuote: ...


@dataclass(frozen=True)
class RateTax:
    """A known rate: the table's row for the state, or the one an order snapshotted.

    Prescription-only medicines are never taxed; general-sale and pharmacy-only items are taxed
    unless the state exempts OTC medicines; shipping only where the state taxes it.
    """

    state: str
    rate: Decimal  # percent, e.g. Decimal("8.875")
    otc_exempt: bool = False
    shipping_taxable: bool = False

    def taxable(self, legal_class: str) -> bool:
        return legal_class in OTC_CLASSES and not self.otc_exempt

    def quote(self, *, lines: Sequence[TaxableLine], shipping: Money, state: str) -> TaxQuote:
        currency = str(shipping.currency)
        taxed = [line for line in lines if self.taxable(line.legal_class)]
        base = add((line.amount for line in taxed), currency)
        goods = money(base.amount * self.rate / 100, currency)
        on_shipping = money(shipping.amount * self.rate / 100, currency) if self.shipping_taxable else zero(currency)
        return TaxQuote(
            goods_tax=goods,
            shipping_tax=on_shipping,
            rate=self.rate,
            snapshot=self.as_json(),
            taxed_keys=frozenset(line.key for line in taxed),
        )

    def as_json(self) -> dict:
        return {
            "state": self.state,
            "rate": str(self.rate),
            "otc_exempt": self.otc_exempt,
            "shipping_taxable": self.shipping_taxable,
        }

    @classmethod
    def from_json(cls, data: dict | None) -> RateTax | None:
        if not data:
            return None
        return cls(
            state=data["state"],
            rate=Decimal(data["rate"]),
            otc_exempt=bool(data["otc_exempt"]),
            shipping_taxable=bool(data["shipping_taxable"]),
        )


# --- Result --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineFigures:
    key: object
    packages: int
    unit_price: Money
    list_price: Money
    line_total: Money  # packages × unit price
    line_savings: Money  # against the list price
    discount: Money  # this line's share of the discount
    net_total: Money  # line total less its discount
    tax: Money  # this line's share of the goods tax
    discounted: bool  # the code applies to this line


@dataclass(frozen=True)
class Totals:
    lines: tuple[LineFigures, ...]
    subtotal: Money
    savings: Money
    discount: Money
    shipping: Money  # after a free-shipping code; includes the express surcharge
    shipping_waived: bool  # a free-shipping code took the standard rate off
    tax: Money  # goods and shipping tax
    total: Money
    item_count: int
    free_shipping_threshold: Money
    free_shipping_remaining: Money
    discount_rule: DiscountRule | None = None
    discount_refusal: str = ""  # why the code given does not apply to these lines
    tax_rate: Decimal = ZERO
    tax_snapshot: dict = field(default_factory=dict)
    tax_known: bool = False  # False until a shipping state is known

    @property
    def currency(self) -> str:
        return str(self.total.currency)

    @property
    def discount_code(self) -> str:
        return self.discount_rule.code if self.discount_rule and not self.discount_refusal else ""

    @property
    def goods_after_discount(self) -> Money:
        return subtract(self.subtotal, self.discount)

    def line(self, key) -> LineFigures:
        return next(line for line in self.lines if line.key == key)


@dataclass(frozen=True)
class RefundSplit:
    """How a refund amount divides, in proportion to what was paid: goods, shipping, tax."""

    amount: Money
    goods: Money
    shipping: Money
    tax: Money


def calculate(
    *,
    lines: Iterable[LineInput],
    currency: str,
    policy: ShippingPolicy,
    method: str = STANDARD,
    discount: DiscountRule | None = None,
    tax: TaxCalculator | None = None,
    state: str = "",
    shipping_override: Money | None = None,
    enforce_minimum: bool = True,
) -> Totals:
    """Every figure of an order from its lines. Pure.

    ``shipping_override`` keeps the shipping charged at placement (approval with changes: a cut
    made by the pharmacy never costs the customer free shipping) and ``enforce_minimum=False``
    keeps a code's minimum spend waived for the same reason, so a recomputed order never costs
    more than the one the customer authorised. Without ``tax`` (or ``state``) tax is zero and
    ``tax_known`` False: the cart page, before an address.
    """
    lines = [line for line in lines if line.packages > 0]
    figures_total = []
    for line in lines:
        row = catalog_pricing.tier_savings_amount(price=line.unit_price, list_price=line.list_price)
        figures_total.append(
            (money(line.unit_price.amount * line.packages, currency), money(row.amount * line.packages, currency))
        )
    subtotal = add((t for t, _ in figures_total), currency)
    savings = add((s for _, s in figures_total), currency)
    item_count = sum(line.packages for line in lines)

    # Discount.
    refusal = ""
    line_discounts = [ZERO for _ in lines]
    free_shipping = False
    if discount is not None:
        eligible = [i for i, line in enumerate(lines) if discount.applies_to(line)]
        if not eligible:
            refusal = f"The code {discount.code} does not apply to the items in your cart."
        elif enforce_minimum and subtotal.amount < discount.min_subtotal:
            refusal = (
                f"The code {discount.code} needs a subtotal of {format_money(Money(discount.min_subtotal, currency))} "
                f"or more; yours is {format_money(subtotal)}."
            )
        elif discount.kind == DiscountKind.PERCENT:
            pct = min(max(discount.value, ZERO), Decimal(100))
            for i in eligible:
                line_discounts[i] = money(figures_total[i][0].amount * pct / 100, currency).amount
        elif discount.kind == DiscountKind.FIXED:
            base = [figures_total[i][0].amount for i in eligible]
            off = min(money(discount.value, currency).amount, sum(base))
            for i, share in zip(eligible, _spread(off, base)):
                line_discounts[i] = share
        elif discount.kind == DiscountKind.FREE_SHIPPING:
            free_shipping = True
    discount_total = add((Money(d, currency) for d in line_discounts), currency)
    goods = subtract(subtotal, discount_total)

    # Shipping: flat below the threshold (measured on what is paid for goods), express surcharge on top.
    threshold = money(policy.free_threshold, currency)
    if shipping_override is not None:
        shipping = money(shipping_override, currency)
    elif item_count == 0:
        shipping = zero(currency)
    else:
        standard = ZERO if (goods.amount >= threshold.amount or free_shipping) else policy.flat_rate
        surcharge = policy.express_surcharge if method == EXPRESS else ZERO
        shipping = money(standard + surcharge, currency)
    remaining = zero(currency) if goods.amount >= threshold.amount else subtract(threshold, goods)

    # Tax, through the seam.
    nets = [money(figures_total[i][0].amount - line_discounts[i], currency) for i in range(len(lines))]
    quote = None
    if tax is not None and state:
        quote = tax.quote(
            lines=[TaxableLine(key=l.key, amount=n, legal_class=l.legal_class) for l, n in zip(lines, nets)],
            shipping=shipping,
            state=state,
        )
    goods_tax = quote.goods_tax if quote else zero(currency)
    shipping_tax = quote.shipping_tax if quote else zero(currency)
    taxed = quote.taxed_keys if quote else frozenset()
    taxable_weights = [n.amount if l.key in taxed else ZERO for l, n in zip(lines, nets)]
    line_taxes = _spread(goods_tax.amount, taxable_weights)
    tax_total = add((goods_tax, shipping_tax), currency)

    total = add((goods, shipping, tax_total), currency)
    result_lines = tuple(
        LineFigures(
            key=line.key,
            packages=line.packages,
            unit_price=money(line.unit_price, currency),
            list_price=money(line.list_price, currency),
            line_total=figures_total[i][0],
            line_savings=figures_total[i][1],
            discount=Money(line_discounts[i], currency),
            net_total=nets[i],
            tax=Money(line_taxes[i], currency),
            discounted=line_discounts[i] > 0 or (free_shipping and discount.applies_to(line)),
        )
        for i, line in enumerate(lines)
    )
    return Totals(
        lines=result_lines,
        subtotal=subtotal,
        savings=savings,
        discount=discount_total,
        shipping=shipping,
        shipping_waived=free_shipping and not refusal,
        tax=tax_total,
        total=total,
        item_count=item_count,
        free_shipping_threshold=threshold,
        free_shipping_remaining=remaining,
        discount_rule=discount,
        discount_refusal=refusal,
        tax_rate=quote.rate if quote else ZERO,
        tax_snapshot=quote.snapshot if quote else {},
        tax_known=quote is not None,
    )


def refund_split(*, totals: Totals, amount: Money) -> RefundSplit:
    """Divide a refund in proportion to what the order charged, so the email can say how much
    of it is sales tax and shipping. The shares add up exactly to ``amount``."""
    currency = totals.currency
    goods, shipping, tax = _spread(
        amount.amount, [totals.goods_after_discount.amount, totals.shipping.amount, totals.tax.amount]
    ) if totals.total.amount > 0 else (amount.amount, ZERO, ZERO)
    return RefundSplit(
        amount=money(amount, currency),
        goods=Money(goods, currency),
        shipping=Money(shipping, currency),
        tax=Money(tax, currency),
    )


def capped(*, amount: Money, authorised: Money) -> Money:
    """Never ask the card for more than the customer authorised."""
    return amount if amount.amount <= authorised.amount else authorised
