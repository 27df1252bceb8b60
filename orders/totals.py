"""An order's figures through ``cart.calculations``: from a cart at placement, from its snapshot after.

``order_snapshot_fields`` and ``line_snapshot_fields`` say what of a ``Totals`` is stored on the
order and its lines; ``order_recalculate`` re-prices an order from its own lines and the discount
and tax rules it snapshotted (never today's catalog price, code or rate), which is what approval
with changes and refunds use. No arithmetic on money here: it all happens in the module.
"""

from __future__ import annotations

from collections.abc import Iterable

from cart import calculations
from cart.calculations import DiscountRule, LineInput, RateTax, Totals

from .models import Order, OrderLine


def order_snapshot_fields(totals: Totals) -> dict:
    """The order's money fields from a calculation."""
    rule = totals.discount_rule if totals.discount_code else None
    return {
        "subtotal": totals.subtotal,
        "savings": totals.savings,
        "discount": totals.discount,
        "discount_code": totals.discount_code,
        "discount_rule": rule.as_json() if rule else None,
        "shipping": totals.shipping,
        "tax": totals.tax,
        "tax_rule": totals.tax_snapshot or None,
        "total": totals.total,
    }


def line_snapshot_fields(figures: calculations.LineFigures) -> dict:
    return {"line_total": figures.line_total, "discount": figures.discount, "tax": figures.tax}


def _line_input(line: OrderLine, packages: int | None = None) -> LineInput:
    legal_class = line.legal_class or (
        calculations.PRESCRIPTION if line.requires_prescription else calculations.GENERAL_SALE
    )
    return LineInput(
        key=line.pk,
        unit_price=line.unit_price,
        list_price=line.list_price,
        packages=line.packages if packages is None else packages,
        legal_class=legal_class,
        product_id=line.product_id,
    )


def order_recalculate(
    *, order: Order, lines: Iterable[OrderLine], packages: dict | None = None
) -> Totals:
    """The order's figures from its snapshot, with ``packages`` (line id → packages) changed.

    The shipping charged and the code's minimum spend are kept as agreed at placement: a cut the
    pharmacy makes never costs the customer free shipping or their discount, so the result is
    never more than the customer authorised.
    """
    packages = packages or {}
    currency = str(order.total.currency)
    tax_rule = RateTax.from_json(order.tax_rule)
    return calculations.calculate(
        lines=[_line_input(line, packages.get(line.pk)) for line in lines],
        currency=currency,
        policy=calculations.shipping_policy(),
        method=order.shipping_method,
        discount=DiscountRule.from_json(order.discount_rule),
        tax=tax_rule,
        state=order.ship_state if tax_rule else "",
        shipping_override=order.shipping,
        enforce_minimum=False,
    )
