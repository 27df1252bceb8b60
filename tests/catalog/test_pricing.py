"""The pricing module: golden reference rows and property-based edge cases."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from moneyed import Money

from catalog import pricing
from tests.conftest import GOLDEN


def usd(value) -> Money:
    return Money(value, "USD")


@pytest.mark.parametrize("dosage", GOLDEN["dosages"], ids=lambda d: d["strength"])
def test_golden_rows_come_out_exactly(dosage):
    rows = pricing.price_table(
        list_price_per_pill=usd(GOLDEN["list_price_per_pill"][dosage["strength"]]),
        packs=[(t["quantity"], usd(t["price"])) for t in dosage["tiers"]],
    )
    for expected, row in zip(dosage["tiers"], rows, strict=True):
        assert str(row.per_pill.amount) == expected["per_pill"]
        assert str(row.list_price.amount) == expected["list_price"]
        assert str(row.price.amount) == expected["price"]
        assert row.savings_percent == expected["savings_percent"]
        assert row.best_per_pill == expected.get("best_per_pill", False)
    assert sum(row.best_per_pill for row in rows) == 1


def test_smallest_pack_shows_no_saving():
    row = pricing.tier_price(quantity=60, price=usd("52.18"), list_price_per_pill=usd("0.86963"))
    assert row.savings_percent == 0
    assert not row.shows_saving


def test_rounding_is_half_up_not_bankers():
    # 0.125 rounds to 0.13 half-up (banker's rounding would give 0.12).
    assert pricing.tier_per_pill_price(price=usd("0.25"), quantity=2).amount == Decimal("0.13")
    assert pricing.round_money(usd("2.345")).amount == Decimal("2.35")
    # 12.5% saved shows as 13%.
    assert pricing.tier_savings_percent(price=usd("87.50"), list_price=usd("100.00")) == 13


def test_price_above_list_shows_no_saving_and_no_strike_through():
    row = pricing.tier_price(quantity=10, price=usd("15.00"), list_price_per_pill=usd("1.00000"))
    assert row.list_price == usd("10.00")
    assert row.savings_percent == 0
    assert row.savings == usd("0")
    assert not row.shows_saving


def test_best_per_pill_tie_goes_to_the_larger_pack():
    packs = [(30, usd("30.00")), (60, usd("60.00")), (90, usd("95.00"))]
    assert pricing.best_per_pill_index(packs) == 1


def test_best_per_pill_told_apart_below_the_cent():
    # 0.6104 and 0.6111 per pill both round to 0.61; the exact comparison still picks one.
    packs = [(360, usd("219.75")), (360 * 2, usd("439.50")), (270, usd("165.00"))]
    assert pricing.best_per_pill_index(packs) == 1


def test_empty_table_has_no_best():
    assert pricing.best_per_pill_index([]) is None


def test_zero_quantity_is_refused():
    with pytest.raises(ValueError):
        pricing.tier_per_pill_price(price=usd("1.00"), quantity=0)


cents = st.integers(min_value=1, max_value=10_000_000).map(lambda c: usd(Decimal(c) / 100))
quantities = st.integers(min_value=1, max_value=1_000_000)
list_prices = st.integers(min_value=1, max_value=100_000_000).map(
    lambda c: usd(Decimal(c) / 100_000)
)


@given(price=cents, quantity=quantities, list_price_per_pill=list_prices)
def test_row_figures_are_consistent(price, quantity, list_price_per_pill):
    row = pricing.tier_price(
        quantity=quantity, price=price, list_price_per_pill=list_price_per_pill
    )
    assert row.per_pill.amount == row.per_pill.amount.quantize(Decimal("0.01"))
    assert row.list_price.amount == row.list_price.amount.quantize(Decimal("0.01"))
    assert 0 <= row.savings_percent <= 100
    # Half-up: the shown per-pill price is within half a cent of the exact one.
    assert abs(row.per_pill.amount - price.amount / quantity) <= Decimal("0.005")
    if price.amount >= row.list_price.amount:
        assert row.savings_percent == 0 and not row.shows_saving


@given(price=cents)
def test_one_pill_pack_costs_its_price_per_pill(price):
    assert pricing.tier_per_pill_price(price=price, quantity=1) == price


@given(
    packs=st.lists(st.tuples(quantities, cents), min_size=1, max_size=12, unique_by=lambda p: p[0])
)
def test_best_pack_is_never_beaten(packs):
    best = packs[pricing.best_per_pill_index(packs)]
    for pack in packs:
        assert not pricing.cheaper_per_pill(pack, best)
