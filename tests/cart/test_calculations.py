"""The calculation module (cart.calculations): every figure of an order from its lines. Pure."""

from decimal import Decimal

from djmoney.money import Money
from hypothesis import given, settings
from hypothesis import strategies as st

from cart import calculations as calc

USD = "USD"
POLICY = calc.ShippingPolicy(flat_rate=Decimal("9.95"), free_threshold=Decimal("150.00"))
NY = calc.RateTax(state="NY", rate=Decimal("8.875"), otc_exempt=False, shipping_taxable=True)
PA = calc.RateTax(state="PA", rate=Decimal("6"), otc_exempt=True, shipping_taxable=False)


def usd(amount) -> Money:
    return Money(Decimal(str(amount)), USD)


def line(key, price, packages=1, legal_class=calc.GENERAL_SALE, list_price=None, product_id=None):
    return calc.LineInput(
        key=key,
        unit_price=usd(price),
        list_price=usd(list_price or price),
        packages=packages,
        legal_class=legal_class,
        product_id=product_id if product_id is not None else key,
    )


def compute(lines, **kwargs):
    kwargs.setdefault("policy", POLICY)
    return calc.calculate(lines=lines, currency=USD, **kwargs)


MIXED = [
    line(1, "20.00", 2),
    line(2, "35.50", 1, calc.PHARMACY),
    line(3, "68.23", 1, calc.PRESCRIPTION),
]


def test_flat_shipping_below_threshold_free_above_and_express_surcharge():
    small = compute([line(1, "40.00")])
    assert (small.subtotal, small.shipping, small.total) == (
        usd("40.00"),
        usd("9.95"),
        usd("49.95"),
    )
    assert small.free_shipping_remaining == usd("110.00")
    big = compute([line(1, "150.00")])
    assert big.shipping == usd("0.00") and big.free_shipping_remaining == usd("0.00")
    express = compute([line(1, "150.00")], method=calc.EXPRESS)
    assert express.shipping == usd("15.00") and express.total == usd("165.00")
    assert compute([]).shipping == usd("0.00")


def test_savings_against_list_price():
    totals = compute([line(1, "68.23", 2, list_price="78.27")])
    assert totals.savings == usd("20.08")
    assert totals.lines[0].line_savings == usd("20.08")


def test_mixed_cart_to_a_state_taxing_otc_taxes_general_sale_and_pharmacy_only_and_shipping():
    totals = compute(MIXED, tax=NY, state="NY")
    # Taxable: 40.00 + 35.50 = 75.50 at 8.875% = 6.700625 → 6.70; shipping 9.95 → 0.883… → 0.88.
    assert totals.subtotal == usd("143.73")
    assert totals.shipping == usd("9.95")
    assert totals.tax == usd("7.58")
    assert totals.total == usd("161.26")
    assert [figures.tax for figures in totals.lines] == [usd("3.55"), usd("3.15"), usd("0.00")]
    assert totals.tax_known and totals.tax_rate == Decimal("8.875")


def test_mixed_cart_to_a_state_exempting_otc_has_no_tax():
    totals = compute(MIXED, tax=PA, state="PA")
    assert totals.tax == usd("0.00")
    assert totals.total == usd("153.68")


def test_prescription_only_is_never_taxed():
    totals = compute([line(1, "100.00", 1, calc.PRESCRIPTION)], tax=NY, state="NY")
    # Only the shipping is taxed in NY.
    assert totals.tax == usd("0.88")


def test_no_state_no_tax_yet():
    totals = compute(MIXED, tax=NY, state="")
    assert totals.tax == usd("0.00") and not totals.tax_known


def test_percent_code_comes_off_each_eligible_line_and_tax_is_on_what_is_paid():
    rule = calc.DiscountRule(code="SPRING10", kind=calc.DiscountKind.PERCENT, value=Decimal("10"))
    totals = compute(MIXED, discount=rule, tax=NY, state="NY")
    # Prescription-only is not discounted by default.
    assert [figures.discount for figures in totals.lines] == [usd("4.00"), usd("3.55"), usd("0.00")]
    assert totals.discount == usd("7.55") and totals.discount_code == "SPRING10"
    # Taxable goods 36.00 + 31.95 = 67.95 × 8.875% = 6.03; shipping (136.18 < 150) 0.88.
    assert totals.tax == usd("6.91")
    assert totals.total == usd("153.04")  # 136.18 + 9.95 + 6.91


def test_fixed_code_is_spread_exactly_and_never_more_than_the_eligible_lines():
    rule = calc.DiscountRule(code="TEN", kind=calc.DiscountKind.FIXED, value=Decimal("10.00"))
    totals = compute([line(1, "10.00"), line(2, "10.00"), line(3, "10.00")], discount=rule)
    assert totals.discount == usd("10.00")
    assert sorted(f.discount.amount for f in totals.lines) == [
        Decimal("3.33"),
        Decimal("3.33"),
        Decimal("3.34"),
    ]
    capped = compute([line(1, "4.00")], discount=rule)
    assert capped.discount == usd("4.00") and capped.total == usd("9.95")


def test_free_shipping_code_waives_standard_rate_but_not_express_surcharge():
    rule = calc.DiscountRule(code="SHIPFREE", kind=calc.DiscountKind.FREE_SHIPPING)
    assert compute([line(1, "40.00")], discount=rule).shipping == usd("0.00")
    assert compute([line(1, "40.00")], discount=rule, method=calc.EXPRESS).shipping == usd("15.00")


def test_code_refusals_not_applicable_and_below_minimum():
    rx_only = compute(
        [line(1, "40.00", 1, calc.PRESCRIPTION)],
        discount=calc.DiscountRule(code="X", kind="percent", value=Decimal(5)),
    )
    assert "does not apply" in rx_only.discount_refusal and rx_only.discount == usd("0.00")
    controlled = calc.DiscountRule(
        code="C", kind="percent", value=Decimal(5), legal_classes=frozenset({calc.CONTROLLED})
    )
    assert compute([line(1, "40.00", 1, calc.CONTROLLED)], discount=controlled).discount_refusal
    minimum = calc.DiscountRule(
        code="BIG", kind="percent", value=Decimal(5), min_subtotal=Decimal("100")
    )
    small = compute([line(1, "40.00")], discount=minimum)
    assert "needs a subtotal of $100.00 or more; yours is $40.00" in small.discount_refusal
    assert small.discount_code == ""
    waived = compute([line(1, "40.00")], discount=minimum, enforce_minimum=False)
    assert waived.discount == usd("2.00")


def test_refund_split_adds_up_to_the_refund():
    totals = compute(MIXED, tax=NY, state="NY")
    split = calc.refund_split(totals=totals, amount=usd("50.00"))
    assert calc.add((split.goods, split.shipping, split.tax), USD) == usd("50.00")
    assert split.tax.amount > 0


prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("900"), places=2)
lines_strategy = st.lists(
    st.tuples(
        prices,
        st.integers(1, 10),
        st.sampled_from([calc.GENERAL_SALE, calc.PHARMACY, calc.PRESCRIPTION]),
    ),
    min_size=1,
    max_size=6,
)
rules = st.one_of(
    st.none(),
    st.builds(
        lambda v: calc.DiscountRule(code="P", kind="percent", value=v),
        st.decimals(0, 100, places=0),
    ),
    st.builds(
        lambda v: calc.DiscountRule(code="F", kind="fixed", value=v), st.decimals(0, 500, places=2)
    ),
    st.just(calc.DiscountRule(code="S", kind="free_shipping")),
)


@settings(max_examples=150, deadline=None)
@given(
    lines_strategy,
    rules,
    st.sampled_from([NY, PA]),
    st.sampled_from([calc.STANDARD, calc.EXPRESS]),
    st.data(),
)
def test_figures_hold_together_and_a_cut_never_costs_more(raw, rule, tax, method, data):
    lines = [line(i + 1, price, packages, legal) for i, (price, packages, legal) in enumerate(raw)]
    totals = compute(lines, discount=rule, tax=tax, state=tax.state, method=method)
    cents = lambda m: m.amount
    assert cents(totals.total) == cents(totals.subtotal) - cents(totals.discount) + cents(
        totals.shipping
    ) + cents(totals.tax)
    assert sum(cents(f.discount) for f in totals.lines) == cents(totals.discount)
    assert sum(cents(f.line_total) for f in totals.lines) == cents(totals.subtotal)
    assert all(f.net_total.amount >= 0 for f in totals.lines) and totals.total.amount >= 0
    assert all(
        f.tax.amount == 0 for f, l in zip(totals.lines, lines) if l.legal_class == calc.PRESCRIPTION
    )
    # A pharmacist cuts packages: recomputed with the shipping and minimum kept, never more.
    cut = [
        calc.LineInput(
            l.key,
            l.unit_price,
            l.list_price,
            data.draw(st.integers(0, l.packages)),
            l.legal_class,
            l.product_id,
        )
        for l in lines
    ]
    again = compute(
        cut,
        discount=rule,
        tax=tax,
        state=tax.state,
        method=method,
        shipping_override=totals.shipping,
        enforce_minimum=False,
    )
    assert again.total.amount <= totals.total.amount
