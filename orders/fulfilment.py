"""Fulfilment: getting a paid order out of the door.

Shipping is not a pharmacist's act. Whoever packs parcels holds ``orders.mark_shipped`` (the
pharmacist role has it, and so can a dispatch clerk who is not a pharmacist); the check is here,
where the action happens. A prescription order reaches "ready to ship" only through the
pharmacist's approval (``prescriptions.decisions``), a general-sale one as soon as its
payment is captured. Staff mark an order shipped from the review queue's "Ready to ship" list
(pharmacists) or from the admin's "Add shipment" form (anyone with ``orders.mark_shipped``).
A new carrier's tracking page goes in ``orders.carriers``.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import QuerySet

from notifications.models import EmailKind
from pharmacy.permissions import require_permission

from .emails import order_email
from .models import Order, Shipment
from .services import OrderError, order_transition
from .state import OrderStatus, PaymentStatus


class ShippingError(OrderError):
    """The order cannot be marked shipped (not ready, no tracking number); ``message`` is fit to show."""


def ready_to_ship() -> QuerySet:
    """Paid orders waiting to be packed: general-sale ones once paid, prescription ones once approved."""
    return Order.objects.filter(status=OrderStatus.READY_TO_SHIP).order_by("updated_at")


def order_mark_shipped(*, order: Order, by, carrier: str, tracking_number: str) -> Shipment:
    """The parcel left: record carrier and tracking number, move to shipped, email the customer.

    Marking an order shipped twice returns the first shipment.
    """
    require_permission(
        by, "orders.mark_shipped", action="mark an order shipped", system_allowed=False
    )
    carrier, tracking_number = (carrier or "").strip(), (tracking_number or "").strip()
    if not carrier or not tracking_number:
        raise ShippingError("Please give the carrier and the tracking number.")
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        existing = Shipment.objects.filter(order=order).first()
        if existing is not None:
            return existing
        if (
            order.status != OrderStatus.READY_TO_SHIP
            or order.payment_status != PaymentStatus.CAPTURED
        ):
            raise ShippingError(
                f"Order {order.number} is not ready to ship ({order.get_status_display().lower()})."
            )
        shipment = Shipment.objects.create(
            order=order, carrier=carrier, tracking_number=tracking_number, by=by
        )
        order_transition(
            order=order,
            to=OrderStatus.SHIPPED,
            by=by,
            note=f"Shipped with {carrier}, tracking {tracking_number}.",
        )
        order_email(
            order=order,
            kind=EmailKind.SHIPPED,
            details={"carrier": carrier, "tracking_number": tracking_number},
        )
    return shipment
