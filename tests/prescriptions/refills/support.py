"""Helpers for the refill tests: a first baclofen order approved and kept on file, and refills."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from cart.models import Cart, CartLine
from checkout.placement import order_place
from orders.models import OrderLine
from prescriptions import on_file_record, refill_cart
from prescriptions.models import PrescriptionOnFile
from tests.factories import UserFactory
from tests.orders.conftest import ADDRESS
from tests.prescriptions.prescription_support import authorise, make_pharmacist, place_rx


def approve_first_order(
    localstripe, tier, *, user=None, refills: int = 3, pharmacist=None, daily_dose="3"
):
    """A customer's first baclofen order, approved by the pharmacist with ``refills`` refills on file."""
    user = user or UserFactory()
    pharmacist = pharmacist or make_pharmacist()
    cart = Cart.objects.get_or_create(user=user)[
        0
    ]  # a customer has one cart; emptied after each payment
    CartLine.objects.create(cart=cart, tier=tier, packages=1, price_when_added=tier.price)
    order = authorise(localstripe, place_rx(cart, tier=tier, user=user, email=user.email))
    line = OrderLine.objects.get(order=order)
    on_file_record.prescription_approve_and_record(
        order=order,
        by=pharmacist,
        records=[
            on_file_record.RecordInput(
                line_id=line.pk,
                directions="1 tablet 3 times a day",
                daily_dose=Decimal(daily_dose),
                quantity_per_fill=line.pack_size,
                refills_authorised=refills,
                date_written=timezone.localdate(),
            )
        ],
        submission_key=uuid.uuid4(),
    )
    return user, order, PrescriptionOnFile.objects.get(source_order=order)


def place_refill(localstripe, record, tier, *, user=None):
    """The customer asks for a refill from their account and pays: an order awaiting review."""
    user = user or record.user
    cart = Cart.objects.filter(user=user).first() or Cart.objects.create(user=user)
    refill_cart.refill_add_to_cart(cart=cart, user=user, record_id=record.pk, tier_id=tier.pk)
    placed = order_place(
        cart=cart,
        email=user.email,
        address=ADDRESS,
        shipping_method="standard",
        user=user,
        prescription=None,
    )
    return authorise(localstripe, placed)


def age_last_fill(record, *, days: int) -> None:
    """Pretend the last fill happened ``days`` ago (the clock cannot be moved in the shared database)."""
    PrescriptionOnFile.objects.filter(pk=record.pk).update(
        last_filled_on=timezone.localdate() - timedelta(days=days)
    )
    record.refresh_from_db()
