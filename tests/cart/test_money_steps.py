"""The steps of ``cart.calculations.calculate`` at their boundaries, and the rules the whole
pipeline keeps for any cart (stated as invariants, not as a copy of the code's figures).

Boundaries checked to the cent: a code's minimum (exactly at it applies, a cent below does not),
the free-shipping threshold (exactly at it ships free, a cent below pays the flat rate; measured
on the goods after the code), and rounding half-up at the half cent.
"""

from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cart import calculations as calc
from tests.cart.test_calculations import NY, PA, POLICY, compute, line, usd

FREE_SHIP = calc.DiscountRule(code="SHIPFREE", kind=calc.DiscountKind.FREE_SHIPPING)
# A state taxing OTC goods but not shipping: the third combination of the table's rules.
TX = calc.RateTax(state="TX", rate=Decimal("6.25"), otc_exempt=False, shipping_taxable=False)


def half_up(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def percent(value, minimum="0"):
    return calc.DiscountRule(
        code="SAVE",
        kind=calc.DiscountKind.PERCENT,
        value=Decimal(value),
        min_subtotal=Decimal(minimum),
    )


# --- Boundaries -----------------------------------------------------------------------------------


@pytest.mark.parametrize("subtotal, applies", [("100.00", True), ("99.99", False)])
def test_a_code_applies_from_exactly_its_minimum_and_not_a_cent_below(subtotal, applies):
    totals = compute([line(1, subtotal)], discount=percent("10", minimum="100.00"))
    assert (totals.discount_refusal == "") is applies
    assert totals.discount == (usd(half_up(Decimal(subtotal) / 10)) if applies else usd("0.00"))
    assert totals.discount_code == ("SAVE" if applies else "")
    if not applies:
        assert "needs a subtotal of $100.00 or more; yours is $99.99" in totals.discount_refusal


def test_a_free_shipping_code_below_its_minimum_does_not_waive_shipping():
    rule = calc.DiscountRule(
        code="SHIP", kind=calc.DiscountKind.FREE_SHIPPING, min_subtotal=Decimal("50")
    )
    assert compute([line(1, "50.00")], discount=rule).shipping == usd("0.00")
    below = compute([line(1, "49.99")], discount=rule)
    assert below.shipping == usd("9.95") and not below.shipping_waived and below.discount_refusal


@pytest.mark.parametrize(
    "price, shipping, remaining", [("150.00", "0.00", "0.00"), ("149.99", "9.95", "0.01")]
)
def test_shipping_is_free_from_exactly_the_threshold_and_not_a_cent_below(
    price, shipping, remaining
):
    totals = compute([line(1, price)])
    assert (totals.shipping, totals.free_shipping_remaining) == (usd(shipping), usd(remaining))
    assert totals.total == usd(Decimal(price) + Decimal(shipping))


@pytest.mark.parametrize("off, shipping", [("10.00", "0.00"), ("10.01", "9.95")])
def test_the_threshold_is_measured_on_the_goods_after_the_code(off, shipping):
    rule = calc.DiscountRule(code="OFF", kind=calc.DiscountKind.FIXED, value=Decimal(off))
    totals = compute([line(1, "160.00")], discount=rule)
    assert totals.shipping == usd(shipping)


def test_express_keeps_its_surcharge_at_the_threshold():
    assert compute([line(1, "150.00")], method=calc.EXPRESS).shipping == usd("15.00")
    assert compute([line(1, "149.99")], method=calc.EXPRESS).shipping == usd("24.95")


def test_half_a_cent_rounds_up_for_discounts_and_tax():
    ten = calc.RateTax(state="XX", rate=Decimal("10"))
    # 10 % of $0.05 is half a cent: the customer sees $0.01 off, and $0.01 of tax on $0.05.
    assert compute([line(1, "0.05")], discount=percent("10")).discount == usd("0.01")
    assert compute([line(1, "0.05")], tax=ten, state="XX").tax == usd("0.01")
    assert compute([line(1, "0.04")], tax=ten, state="XX").tax == usd("0.00")


# --- Invariants over any cart ---------------------------------------------------------------------

classes = st.sampled_from([calc.GENERAL_SALE, calc.PHARMACY, calc.PRESCRIPTION])
carts = st.lists(
    st.tuples(st.decimals(Decimal("0.01"), Decimal("400"), places=2), st.integers(1, 5), classes),
    min_size=1,
    max_size=5,
)
codes = st.one_of(
    st.none(),
    st.builds(percent, st.integers(0, 100), st.sampled_from(["0", "100", "150"])),
    st.builds(
        lambda v, m: calc.DiscountRule(code="F", kind="fixed", value=v, min_subtotal=Decimal(m)),
        st.decimals(Decimal("0"), Decimal("300"), places=2),
        st.sampled_from(["0", "120"]),
    ),
    st.just(FREE_SHIP),
)


def check_lines(totals, lines):
    """Each line is packages × price, half-up; the subtotal is their sum."""
    expected = [half_up(line.unit_price.amount * line.packages) for line in lines]
    assert [f.line_total.amount for f in totals.lines] == expected
    assert totals.subtotal.amount == sum(expected)


def check_discount(totals, lines, rule):
    """Refused exactly below the minimum (or with no line it applies to); a percent is half-up
    per eligible line; the lines' shares add up to the discount, never more than the goods."""
    eligible = [f for f, line in zip(totals.lines, lines) if rule and rule.applies_to(line)]
    refused = rule is not None and (not eligible or totals.subtotal.amount < rule.min_subtotal)
    assert bool(totals.discount_refusal) is refused
    if rule and rule.kind == calc.DiscountKind.PERCENT and not refused:
        for f in eligible:
            assert f.discount.amount == half_up(f.line_total.amount * rule.value / 100)
    shares = sum(f.discount.amount for f in totals.lines)
    assert totals.discount.amount == shares <= totals.subtotal.amount
    return refused


def check_shipping(totals, waived, method):
    """Flat below the threshold (on the goods after the code), free from it or with a
    free-shipping code; express adds its surcharge either way."""
    reached = totals.goods_after_discount.amount >= POLICY.free_threshold
    standard = Decimal("0.00") if reached or waived else POLICY.flat_rate
    surcharge = POLICY.express_surcharge if method == calc.EXPRESS else 0
    assert totals.shipping.amount == standard + surcharge


def check_tax(totals, lines, tax):
    """OTC goods after the code unless the state exempts them, plus shipping where the state
    taxes it, each half-up; prescription-only lines never carry tax."""
    taxable = {calc.GENERAL_SALE, calc.PHARMACY} if not tax.otc_exempt else set()
    taxed = [f for f, line in zip(totals.lines, lines) if line.legal_class in taxable]
    goods_tax = half_up(sum((f.net_total.amount for f in taxed), Decimal(0)) * tax.rate / 100)
    shipping_tax = half_up(totals.shipping.amount * tax.rate / 100) if tax.shipping_taxable else 0
    assert totals.tax.amount == goods_tax + shipping_tax
    assert sum(f.tax.amount for f in taxed) == goods_tax
    assert all(f.tax.amount == 0 for f in totals.lines if f not in taxed)


@settings(max_examples=200, deadline=None)
@given(carts, codes, st.sampled_from([NY, PA, TX]), st.sampled_from([calc.STANDARD, calc.EXPRESS]))
def test_every_cart_keeps_the_rules_of_the_money(raw, rule, tax, method):
    lines = [line(i + 1, price, n, legal) for i, (price, n, legal) in enumerate(raw)]
    totals = compute(lines, discount=rule, tax=tax, state=tax.state, method=method)
    check_lines(totals, lines)
    refused = check_discount(totals, lines, rule)
    check_shipping(totals, waived=rule is FREE_SHIP and not refused, method=method)
    check_tax(totals, lines, tax)
    # The total: lines − discount + shipping + tax, to the cent.
    lines_, off, shipping, taxes = (
        m.amount for m in (totals.subtotal, totals.discount, totals.shipping, totals.tax)
    )
    assert totals.total.amount == lines_ - off + shipping + taxes
