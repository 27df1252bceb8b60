"""Pricing a cart: the pure summary (unsaved objects, no database) and ``cart_summary``."""

from decimal import Decimal

import pytest
from djmoney.money import Money

from cart.models import Cart, CartLine
from cart.pricing import cart_summary, summarize_lines
from catalog.models import Dosage, LegalClass, PackageTier, Product
from tests.factories import PackageTierFactory, ProductFactory

USD = "USD"


def usd(amount: str) -> Money:
    return Money(Decimal(amount), USD)


def make_line(
    *,
    line_id=1,
    tier_id=1,
    quantity=90,
    price="68.23",
    list_per_pill="0.86963",
    packages=1,
    price_when_added=None,
    product=None,
    is_active=True,
    stock=None,
    strength="10mg",
):
    """An unsaved CartLine with its tier, dosage and product: nothing touches the database."""
    product = product or Product(
        id=1,
        name="Baclofen",
        slug="baclofen",
        legal_class=LegalClass.PRESCRIPTION,
        is_published=True,
    )
    dosage = Dosage(
        id=tier_id, product=product, strength=strength, list_price_per_pill=usd(list_per_pill)
    )
    tier = PackageTier(
        id=tier_id,
        dosage=dosage,
        quantity=quantity,
        price=usd(price),
        is_active=is_active,
        stock=stock,
    )
    return CartLine(
        id=line_id, tier=tier, packages=packages, price_when_added=usd(price_when_added or price)
    )


def summarize(lines, **kwargs):
    kwargs.setdefault("shipping_flat_rate", Decimal("9.95"))
    kwargs.setdefault("free_shipping_threshold", Decimal("150.00"))
    kwargs.setdefault("max_packages_per_line", 10)
    return summarize_lines(lines, **kwargs)


class TestSummarizeLines:
    def test_reference_baclofen_cart(self):
        summary = summarize(
            [
                make_line(
                    line_id=1, tier_id=1, quantity=90, price="68.23", list_per_pill="0.86963"
                ),
                make_line(
                    line_id=2,
                    tier_id=2,
                    quantity=270,
                    price="499.70",
                    list_per_pill="3.37818",
                    strength="25mg",
                ),
            ]
        )
        assert summary.subtotal == usd("567.93")
        assert summary.savings == usd("422.45")
        assert [line.line_savings for line in summary.lines] == [usd("10.04"), usd("412.41")]
        assert [line.list_price for line in summary.lines] == [usd("78.27"), usd("912.11")]
        assert summary.shipping == usd("0.00")
        assert summary.total == usd("567.93")
        assert summary.item_count == 2
        assert summary.has_prescription_items
        assert summary.can_checkout
        first = summary.lines[0]
        assert first.per_pill == usd("0.76")
        assert first.savings_percent == 13
        assert first.pills == 90
        assert first.notice == ""

    def test_packages_multiply_totals_and_savings(self):
        summary = summarize([make_line(packages=3)])
        line = summary.lines[0]
        assert line.line_total == usd("204.69")
        assert line.line_savings == usd("30.12")
        assert line.pills == 270
        assert summary.item_count == 3

    def test_flat_shipping_below_threshold_and_distance_to_free(self):
        summary = summarize([make_line(quantity=60, price="52.18")])
        assert summary.subtotal == usd("52.18")
        assert summary.shipping == usd("9.95")
        assert summary.total == usd("62.13")
        assert summary.free_shipping_remaining == usd("97.82")

    def test_shipping_free_exactly_at_threshold(self):
        summary = summarize([make_line(quantity=60, price="150.00")])
        assert summary.shipping == usd("0.00")
        assert summary.total == usd("150.00")
        assert summary.free_shipping_remaining == usd("0.00")

    def test_empty_cart_has_no_shipping_and_cannot_check_out(self):
        summary = summarize([])
        assert summary.is_empty
        assert not summary.can_checkout
        assert summary.shipping == usd("0.00")
        assert summary.total == usd("0.00")

    def test_price_change_uses_current_price_and_says_so(self):
        summary = summarize([make_line(price="70.00", price_when_added="68.23")])
        line = summary.lines[0]
        assert line.unit_price == usd("70.00")
        assert line.price_changed
        assert line.notice == "Price changed from $68.23 to $70.00"
        assert summary.subtotal == usd("70.00")

    def test_inactive_tier_is_shown_but_not_totalled(self):
        summary = summarize(
            [
                make_line(line_id=1, tier_id=1),
                make_line(line_id=2, tier_id=2, price="85.29", quantity=120, is_active=False),
            ]
        )
        assert len(summary.lines) == 2
        gone = summary.lines[1]
        assert not gone.available
        assert gone.notice == "No longer available: not included in your total"
        assert summary.subtotal == usd("68.23")
        assert summary.item_count == 1
        assert summary.can_checkout

    def test_unpublished_and_controlled_products_not_totalled(self):
        hidden = Product(
            id=2, name="Hidden", slug="hidden", legal_class=LegalClass.PHARMACY, is_published=False
        )
        controlled = Product(
            id=3,
            name="Restricted",
            slug="restricted",
            legal_class=LegalClass.CONTROLLED,
            is_published=True,
        )
        summary = summarize(
            [
                make_line(line_id=1, tier_id=1, product=hidden),
                make_line(line_id=2, tier_id=2, product=controlled),
            ]
        )
        assert [line.available for line in summary.lines] == [False, False]
        assert "not available for online order" in summary.lines[1].notice.lower()
        assert summary.subtotal == usd("0.00")
        assert summary.is_empty
        assert not summary.can_checkout

    def test_max_pills_per_order_blocks_checkout(self):
        product = Product(
            id=5,
            name="Limited",
            slug="limited",
            legal_class=LegalClass.PHARMACY,
            is_published=True,
            max_pills_per_order=200,
        )
        summary = summarize(
            [
                make_line(line_id=1, tier_id=1, product=product, quantity=90, packages=2),
                make_line(line_id=2, tier_id=2, product=product, quantity=60),
            ]
        )
        assert not summary.can_checkout
        assert summary.problems == ("Limited: at most 200 pills per order; your cart has 240.",)

    def test_too_many_packages_blocks_checkout(self):
        summary = summarize([make_line(packages=12)])
        assert not summary.can_checkout
        assert "at most 10 packages" in summary.problems[0]

    def test_stock_limits(self):
        summary = summarize(
            [
                make_line(line_id=1, tier_id=1, stock=0),
                make_line(line_id=2, tier_id=2, stock=1, packages=2),
            ]
        )
        assert not summary.lines[0].available
        assert summary.lines[0].notice.startswith("Out of stock")
        assert "only 1 in stock" in summary.problems[0]


@pytest.mark.django_db
class TestCartSummary:
    def tier(self, product, strength, quantity):
        return PackageTier.objects.get(
            dosage__product=product, dosage__strength=strength, quantity=quantity
        )

    def test_none_cart_is_empty(self):
        assert cart_summary(None).is_empty

    def test_reference_cart_from_database_in_one_query(
        self, baclofen, customer, django_assert_num_queries
    ):
        cart = Cart.objects.create(user=customer)
        for strength, quantity in (("10mg", 90), ("25mg", 270)):
            tier = self.tier(baclofen, strength, quantity)
            CartLine.objects.create(cart=cart, tier=tier, packages=1, price_when_added=tier.price)
        with django_assert_num_queries(1):
            summary = cart_summary(cart)
        assert summary.subtotal == usd("567.93")
        assert summary.savings == usd("422.45")
        assert summary.total == usd("567.93")
        assert summary.shipping == usd("0.00")

    def test_admin_price_change_is_used_and_noticed(self, baclofen, customer):
        cart = Cart.objects.create(user=customer)
        tier = self.tier(baclofen, "10mg", 90)
        CartLine.objects.create(cart=cart, tier=tier, packages=1, price_when_added=tier.price)
        tier.price = usd("70.00")
        tier.save()
        summary = cart_summary(cart)
        assert summary.subtotal == usd("70.00")
        assert summary.lines[0].notice == "Price changed from $68.23 to $70.00"

    def test_unpublished_product_excluded_from_totals(self, customer):
        kept = PackageTierFactory(price=usd("20.00"))
        withdrawn = PackageTierFactory(
            price=usd("30.00"), dosage__product=ProductFactory(is_published=False)
        )
        cart = Cart.objects.create(user=customer)
        for tier in (kept, withdrawn):
            CartLine.objects.create(cart=cart, tier=tier, packages=1, price_when_added=tier.price)
        summary = cart_summary(cart)
        assert summary.subtotal == usd("20.00")
        assert [line.available for line in summary.lines] == [True, False]
