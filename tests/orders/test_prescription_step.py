"""Orders' extension point (``orders/prescription_step.py``): without an implementation named in
settings the shop refuses prescription items, and nothing of such an order is left behind."""

from __future__ import annotations

import pytest

from checkout.placement import order_place
from orders import services
from orders.models import Order, OrderLine
from orders.prescription_step import PrescriptionStep, prescription_step
from tests.orders.conftest import ADDRESS, make_cart


def test_the_project_names_the_prescriptions_app_as_the_step():
    step = prescription_step()
    assert type(step).__module__ == "prescriptions.checkout_step"
    assert isinstance(step, PrescriptionStep)


@pytest.mark.django_db
def test_without_a_step_a_prescription_order_is_refused_and_nothing_is_placed(
    settings, baclofen_90
):
    settings.ORDERS_PRESCRIPTION_STEP = ""
    assert type(prescription_step()) is PrescriptionStep
    cart = make_cart(tier=baclofen_90)
    with pytest.raises(services.OrderError) as refused:
        order_place(
            cart=cart,
            email="alex@example.com",
            address=ADDRESS,
            shipping_method="standard",
            prescription=None,
        )
    assert refused.value.message == "This shop cannot take orders for prescription medicine."
    assert not Order.objects.exists() and not OrderLine.objects.exists()


@pytest.mark.django_db
def test_with_the_step_a_prescription_order_without_a_prescription_is_refused(baclofen_90):
    cart = make_cart(tier=baclofen_90)
    with pytest.raises(services.OrderError) as refused:
        order_place(
            cart=cart,
            email="alex@example.com",
            address=ADDRESS,
            shipping_method="standard",
            prescription=None,
        )
    assert refused.value.message == (
        "Please give the patient's details and a prescription for each prescription item."
    )
    assert not Order.objects.exists()
