"""The refill parts of the checkout page, kept apart from the checkout itself (issue #21).

A refill checkout shows, for each refill in the cart, the prescription it draws on, the price of
one pill, and whether it can be paid for now: a refill that is too soon (or needs a new
prescription) says why and from when, and the Pay button stays off. The server refuses the same
refill again when the order is placed (``prescriptions.refill_cart.refills_verify_for_order``), so a
form posted directly cannot pay for it either. The address the patient's last order shipped to
is offered, prefilled.
"""

from __future__ import annotations

from dataclasses import dataclass

from orders.models import Order
from orders.state import OrderStatus

from .models import PrescriptionOnFile
from .refill_cart import cart_refills_of_lines
from .refill_rules import RefillChecks, refill_checks, refills_for_pack

SHIPPED_STATUSES = (OrderStatus.READY_TO_SHIP, OrderStatus.SHIPPED, OrderStatus.DELIVERED)


@dataclass(frozen=True)
class RefillRow:
    record: PrescriptionOnFile
    checks: RefillChecks
    line: object | None  # the cart's priced line (``cart.pricing.CartLineSummary``)

    @property
    def blocked(self) -> bool:
        return self.checks.too_soon or self.checks.needs_new_prescription


@dataclass(frozen=True)
class RefillCheckout:
    rows: tuple[RefillRow, ...] = ()
    address: dict | None = None  # initial checkout fields: the last address shipped to

    @property
    def blocked(self) -> bool:
        """Some refill in the cart cannot be paid for now."""
        return any(row.blocked for row in self.rows)


def refill_checkout_for(*, user, cart_lines, summary) -> RefillCheckout:
    """The refill rows of this checkout (from cart lines read with ``refill__prescription``)."""
    refills = cart_refills_of_lines(cart_lines)
    if not refills:
        return RefillCheckout()
    priced = {line.tier_id: line for line in summary.available_lines}
    rows = []
    for tier_id, record in refills.items():
        line = priced.get(tier_id)
        needed = refills_for_pack(record=record, pills=line.pack_size) if line else 1
        rows.append(
            RefillRow(record=record, checks=refill_checks(record, refills_needed=needed), line=line)
        )
    return RefillCheckout(rows=tuple(rows), address=last_shipping_address(user))


def last_shipping_address(user) -> dict:
    """The checkout fields of the address the customer's latest order went (or is going) to."""
    if user is None or not getattr(user, "is_authenticated", False):
        return {}
    order = (
        Order.objects.filter(user=user, status__in=SHIPPED_STATUSES)
        .order_by("-created_at")
        .only("ship_name", "ship_line1", "ship_line2", "ship_city", "ship_state", "ship_zip")
        .first()
    )
    if order is None:
        return {}
    return {
        "name": order.ship_name,
        "line1": order.ship_line1,
        "line2": order.ship_line2,
        "city": order.ship_city,
        "state": order.ship_state,
        "zip_code": order.ship_zip,
    }
