"""An order's money: the one module that adds amounts together.

From lines carrying a price per package (the catalog's *current* price for a cart, the order's
*snapshot* for an order) ``calculate`` derives every figure a customer sees or pays: line totals
(through ``catalog.pricing``), subtotal, savings against list prices, the discount, shipping, sales
tax and the total. It returns one frozen ``Totals``; the total is built from the other figures in
one place, so no page, email or PaymentIntent can show a total that disagrees with its own lines.

``calculate`` is a pipeline of named steps, each a short function with its own rule and its own
boundary tests: ``price_lines`` (line totals, subtotal, savings), ``apply_discount`` (the code,
its minimum inclusive), ``shipping_for`` (the free-shipping threshold inclusive, measured after
the code), ``tax_for`` (the tax seam) and ``totals_of`` (the total, built in one place).

Who calls it: the cart page (``cart.pricing.cart_summary``), the checkout page and order
placement (``orders.services``), approval with changes (``prescriptions.decisions``), refunds
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
from catalog.pricing import format_money  # the one money formatter, re-exported

ZERO = Decimal("0.00")
CENT = Decimal("0.01")
EXPRESS_SURCHARGE = Decimal("15.00")
STANDARD, EXPRESS = "standard", "express"

# Legal classes, as in catalog.models.LegalClass (repeated as strings to keep this module pure).
GENERAL_SALE, PHARMACY, PRESCRIPTION, CONTROLLED = (
    "general_sale",
    "pharmacy",
    "prescription",
    "controlled",
)
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
    order = sorted(range(len(raw)), key=lambda i: raw[i] - shares[i], reverse=True)
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
        express_surcharge=Decimal(
            getattr(settings, "SHIPPING_EXPRESS_SURCHARGE", EXPRESS_SURCHARGE)
        ),
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
        on_shipping = (
            money(shipping.amount * self.rate / 100, currency)
            if self.shipping_taxable
            else zero(currency)
        )
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


# --- The pipeline: lines → discount → shipping → tax → total ----------------------------------
#
# Each step is a small function with one job, so a rule (the code's minimum, the free-shipping
# threshold, which lines are taxed) has one place to read and one place to test at its boundary.
# The steps pass frozen records forward; ``calculate`` only wires them together.


@dataclass(frozen=True)
class PricedLines:
    """Step 1: the lines kept (packages > 0) and what each costs before any code."""

    lines: tuple[LineInput, ...]
    totals: tuple[Money, ...]  # packages × unit price, per line
    savings: tuple[Money, ...]  # against the list price, per line
    subtotal: Money
    savings_total: Money
    item_count: int


@dataclass(frozen=True)
class DiscountResult:
    """Step 2: what the code takes off each line, or why it takes nothing."""

    per_line: tuple[Decimal, ...]
    total: Money
    free_shipping: bool  # a free-shipping code applies (never together with a refusal)
    refusal: str = ""


@dataclass(frozen=True)
class ShippingResult:
    """Step 3: the shipping charged and how far the goods are from free shipping."""

    charged: Money
    threshold: Money
    remaining: Money


@dataclass(frozen=True)
class TaxResult:
    """Step 4: the quote (None until a state is known), each line's share and the tax total."""

    quote: TaxQuote | None
    per_line: tuple[Decimal, ...]
    total: Money


def price_lines(lines: Iterable[LineInput], currency: str) -> PricedLines:
    """Line totals and savings through ``catalog.pricing``, so a cart line and a card agree."""
    kept = tuple(line for line in lines if line.packages > 0)
    totals, savings = [], []
    for line in kept:
        saved = catalog_pricing.tier_savings_amount(
            price=line.unit_price, list_price=line.list_price
        )
        totals.append(money(line.unit_price.amount * line.packages, currency))
        savings.append(money(saved.amount * line.packages, currency))
    return PricedLines(
        lines=kept,
        totals=tuple(totals),
        savings=tuple(savings),
        subtotal=add(totals, currency),
        savings_total=add(savings, currency),
        item_count=sum(line.packages for line in kept),
    )


def discount_refusal(
    *, rule: DiscountRule, priced: PricedLines, eligible: list[int], enforce_minimum: bool
) -> str:
    """Why the code takes nothing off these lines, or ''. The minimum is inclusive: a subtotal
    exactly at it qualifies, so the cart's "spend $X more" promise holds to the cent."""
    if not eligible:
        return f"The code {rule.code} does not apply to the items in your cart."
    if enforce_minimum and priced.subtotal.amount < rule.min_subtotal:
        minimum = format_money(Money(rule.min_subtotal, str(priced.subtotal.currency)))
        yours = format_money(priced.subtotal)
        return f"The code {rule.code} needs a subtotal of {minimum} or more; yours is {yours}."
    return ""


def percent_off(
    *, rule: DiscountRule, priced: PricedLines, eligible: list[int], currency: str
) -> list[Decimal]:
    """A percent is rounded per line, so each line shown with its discount adds up on its own."""
    pct = min(max(rule.value, ZERO), Decimal(100))
    off = [ZERO for _ in priced.lines]
    for i in eligible:
        off[i] = money(priced.totals[i].amount * pct / 100, currency).amount
    return off


def fixed_off(
    *, rule: DiscountRule, priced: PricedLines, eligible: list[int], currency: str
) -> list[Decimal]:
    """A fixed amount never exceeds the eligible lines (no negative line) and is spread over them
    by largest remainder, so the shares add up exactly and refunds can be split by line."""
    base = [priced.totals[i].amount for i in eligible]
    amount = min(money(rule.value, currency).amount, sum(base))
    off = [ZERO for _ in priced.lines]
    for i, share in zip(eligible, _spread(amount, base)):
        off[i] = share
    return off


def apply_discount(
    *, priced: PricedLines, rule: DiscountRule | None, currency: str, enforce_minimum: bool
) -> DiscountResult:
    """Step 2: the code's effect on these lines. A refused code still travels on (as the refusal)
    so the page can say why it gave nothing."""
    none = tuple(ZERO for _ in priced.lines)
    if rule is None:
        return DiscountResult(per_line=none, total=zero(currency), free_shipping=False)
    eligible = [i for i, line in enumerate(priced.lines) if rule.applies_to(line)]
    refusal = discount_refusal(
        rule=rule, priced=priced, eligible=eligible, enforce_minimum=enforce_minimum
    )
    if refusal or rule.kind not in (DiscountKind.PERCENT, DiscountKind.FIXED):
        free = not refusal and rule.kind == DiscountKind.FREE_SHIPPING
        return DiscountResult(
            per_line=none, total=zero(currency), free_shipping=free, refusal=refusal
        )
    take = percent_off if rule.kind == DiscountKind.PERCENT else fixed_off
    off = tuple(take(rule=rule, priced=priced, eligible=eligible, currency=currency))
    total = add((Money(d, currency) for d in off), currency)
    return DiscountResult(per_line=off, total=total, free_shipping=False)


def shipping_for(
    *,
    policy: ShippingPolicy,
    method: str,
    goods: Money,
    item_count: int,
    free_shipping: bool,
    override: Money | None,
) -> ShippingResult:
    """Step 3. The threshold is measured on what is paid for the goods (after the code) and is
    inclusive: goods exactly at it ship free. A free-shipping code waives the standard rate only;
    express keeps its surcharge. ``override`` keeps the shipping charged at placement."""
    currency = str(goods.currency)
    threshold = money(policy.free_threshold, currency)
    reached = goods.amount >= threshold.amount
    if override is not None:
        charged = money(override, currency)
    elif item_count == 0:
        charged = zero(currency)
    else:
        standard = ZERO if (reached or free_shipping) else policy.flat_rate
        surcharge = policy.express_surcharge if method == EXPRESS else ZERO
        charged = money(standard + surcharge, currency)
    remaining = zero(currency) if reached else subtract(threshold, goods)
    return ShippingResult(charged=charged, threshold=threshold, remaining=remaining)


def tax_for(
    *,
    priced: PricedLines,
    nets: Sequence[Money],
    shipping: Money,
    tax: TaxCalculator | None,
    state: str,
) -> TaxResult:
    """Step 4: tax through the seam, on what is paid per line after the code. Without a state
    there is no tax yet (the cart before an address). The goods tax is computed once on the taxed
    lines and then spread over them, so the per-line shares add up to it exactly."""
    currency = str(shipping.currency)
    if tax is None or not state:
        return TaxResult(quote=None, per_line=tuple(ZERO for _ in nets), total=zero(currency))
    taxable = [
        TaxableLine(key=line.key, amount=net, legal_class=line.legal_class)
        for line, net in zip(priced.lines, nets)
    ]
    quote = tax.quote(lines=taxable, shipping=shipping, state=state)
    weights = [
        net.amount if line.key in quote.taxed_keys else ZERO
        for line, net in zip(priced.lines, nets)
    ]
    return TaxResult(
        quote=quote,
        per_line=tuple(_spread(quote.goods_tax.amount, weights)),
        total=add((quote.goods_tax, quote.shipping_tax), currency),
    )


def line_figures(
    *,
    priced: PricedLines,
    off: DiscountResult,
    nets: Sequence[Money],
    taxes: TaxResult,
    rule: DiscountRule | None,
) -> tuple[LineFigures, ...]:
    """Each line's own figures, for the rows of the cart, checkout, order page and emails."""
    currency = str(priced.subtotal.currency)
    return tuple(
        LineFigures(
            key=line.key,
            packages=line.packages,
            unit_price=money(line.unit_price, currency),
            list_price=money(line.list_price, currency),
            line_total=priced.totals[i],
            line_savings=priced.savings[i],
            discount=Money(off.per_line[i], currency),
            net_total=nets[i],
            tax=Money(taxes.per_line[i], currency),
            discounted=off.per_line[i] > 0 or (off.free_shipping and rule.applies_to(line)),
        )
        for i, line in enumerate(priced.lines)
    )


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
    """Every figure of an order from its lines, in one call so no figure comes from another moment.

    ``shipping_override`` keeps the shipping charged at placement (approval with changes: a cut
    made by the pharmacy never costs the customer free shipping) and ``enforce_minimum=False``
    keeps a code's minimum spend waived for the same reason, so a recomputed order never costs
    more than the one the customer authorised. Without ``tax`` (or ``state``) tax is zero and
    ``tax_known`` False: the cart page, before an address.
    """
    priced = price_lines(lines, currency)
    off = apply_discount(
        priced=priced, rule=discount, currency=currency, enforce_minimum=enforce_minimum
    )
    goods = subtract(priced.subtotal, off.total)
    shipping = shipping_for(
        policy=policy,
        method=method,
        goods=goods,
        item_count=priced.item_count,
        free_shipping=off.free_shipping,
        override=shipping_override,
    )
    nets = tuple(money(t.amount - d, currency) for t, d in zip(priced.totals, off.per_line))
    taxes = tax_for(priced=priced, nets=nets, shipping=shipping.charged, tax=tax, state=state)
    return totals_of(
        priced=priced, off=off, nets=nets, shipping=shipping, taxes=taxes, rule=discount
    )


def totals_of(
    *,
    priced: PricedLines,
    off: DiscountResult,
    nets: Sequence[Money],
    shipping: ShippingResult,
    taxes: TaxResult,
    rule: DiscountRule | None,
) -> Totals:
    """Step 5: the total, built here and nowhere else from the figures shown beside it."""
    currency = str(priced.subtotal.currency)
    goods = subtract(priced.subtotal, off.total)
    return Totals(
        lines=line_figures(priced=priced, off=off, nets=nets, taxes=taxes, rule=rule),
        subtotal=priced.subtotal,
        savings=priced.savings_total,
        discount=off.total,
        shipping=shipping.charged,
        shipping_waived=off.free_shipping,
        tax=taxes.total,
        total=add((goods, shipping.charged, taxes.total), currency),
        item_count=priced.item_count,
        free_shipping_threshold=shipping.threshold,
        free_shipping_remaining=shipping.remaining,
        discount_rule=rule,
        discount_refusal=off.refusal,
        tax_rate=taxes.quote.rate if taxes.quote else ZERO,
        tax_snapshot=taxes.quote.snapshot if taxes.quote else {},
        tax_known=taxes.quote is not None,
    )


def refund_split(*, totals: Totals, amount: Money) -> RefundSplit:
    """Divide a refund in proportion to what the order charged, so the email can say how much
    of it is sales tax and shipping. The shares add up exactly to ``amount``."""
    currency = totals.currency
    goods, shipping, tax = (
        _spread(
            amount.amount,
            [totals.goods_after_discount.amount, totals.shipping.amount, totals.tax.amount],
        )
        if totals.total.amount > 0
        else (amount.amount, ZERO, ZERO)
    )
    return RefundSplit(
        amount=money(amount, currency),
        goods=Money(goods, currency),
        shipping=Money(shipping, currency),
        tax=Money(tax, currency),
    )


def capped(*, amount: Money, authorised: Money) -> Money:
    """Never ask the card for more than the customer authorised."""
    return amount if amount.amount <= authorised.amount else authorised
