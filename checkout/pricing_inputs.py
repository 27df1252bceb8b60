"""What the checkout knows beyond the cart, for ``cart.calculations``: the code and the tax.

The checkout page and ``order_place`` both price the cart with ``cart_summary(cart, method=…,
**order_pricing_inputs(cart=…, state=…))``, so the page shows the figure the card is asked for.
The tax calculator is chosen here: the staff's rate table today; a tax service would be swapped
in at this one line (it only has to implement ``cart.calculations.TaxCalculator``).
"""

from __future__ import annotations

from salestax.services import TableTaxCalculator


def order_pricing_inputs(*, cart, state: str, email: str | None = None) -> dict:
    """``tax``, ``state`` and ``email`` keyword arguments for ``cart_summary`` (which reads the
    cart's discount code itself; ``email`` applies the code's per-customer limit)."""
    return {"tax": TableTaxCalculator(), "state": state or "", "email": email or None}
