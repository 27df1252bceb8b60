"""The one door through which an order reaches prescription work, without importing it.

Prescriptions sit above orders (a pharmacist's decision captures or cancels an order's hold), so
orders never imports them. What checkout, placement, capture, claiming a guest order and the order
page need from them is this small interface; the project names the implementation, as it names
authentication backends::

    ORDERS_PRESCRIPTION_STEP = "prescriptions.checkout_step.PrescriptionStep"

Without that setting the shop sells no prescription medicine: ``PrescriptionStep`` below refuses
an order with a prescription item and adds nothing anywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.utils.module_loading import import_string

from .errors import OrderError


@dataclass
class CheckoutPart:
    """The prescription part of one checkout page.

    ``form`` asks for the patient and a prescription per item (None when nothing needs asking);
    ``address`` prefills the shipping fields; ``blocked`` keeps Pay off (a refill that is too
    soon); ``context`` is added to the page for the templates under ``templates/prescriptions/``.
    """

    form: object | None = None
    address: dict = field(default_factory=dict)
    blocked: bool = False
    context: dict = field(default_factory=dict)

    def intake(self):
        """What the customer gave, for ``order_place`` (None without a form)."""
        return self.form.intake() if self.form is not None else None


@dataclass(frozen=True)
class OrderReview:
    """The pharmacist's review of one order, for its page.

    ``code``: "" (no review), awaiting, information_requested, approved, approved_with_changes,
    rejected or expired. ``decisions``: (when, what the customer reads), oldest first.
    """

    code: str = ""
    decisions: tuple[tuple[datetime, str], ...] = ()


class PrescriptionStep:
    """The default: a shop without prescription work. Override every method together."""

    #: Relations of ``cart.CartLine`` the checkout reads with the lines (one query, not two).
    cart_line_relations: tuple[str, ...] = ()

    def checkout(self, request, *, user, lines, summary) -> CheckoutPart:
        """The prescription part of the checkout page (``lines``: the cart's lines)."""
        return CheckoutPart()

    def checkout_placed(self, request, *, order, user) -> None:
        """After ``order_place`` succeeded from the checkout page (e.g. a consent box to keep)."""

    def order_placed(self, *, order, cart, user, intake) -> None:
        """Inside ``order_place``'s transaction, after the lines are written: attach or verify
        what the prescription items need, or raise ``OrderError`` (nothing is placed)."""
        if order.has_prescription_items:
            raise OrderError("This shop cannot take orders for prescription medicine.")

    def payment_captured(self, *, order, by) -> None:
        """Inside the capture's transaction, once per capture of ``order``."""

    def order_claimed(self, *, order, user) -> None:
        """Inside the transaction that put a guest ``order`` in ``user``'s account."""

    def order_review(self, *, order) -> OrderReview:
        return OrderReview()


def prescription_step() -> PrescriptionStep:
    """The implementation named by ``settings.ORDERS_PRESCRIPTION_STEP``."""
    path = getattr(settings, "ORDERS_PRESCRIPTION_STEP", "")
    return import_string(path)() if path else PrescriptionStep()
