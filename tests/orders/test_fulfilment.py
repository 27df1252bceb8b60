"""Shipping a general-sale order needs ``orders.mark_shipped``, not a pharmacist (issue 14)."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse

from notifications.models import EmailKind, OutboundEmail
from orders import services
from orders.models import Shipment
from orders.state import OrderStatus, PaymentStatus
from prescriptions.queue import is_pharmacist
from tests.localstripe import CARD_OK, browser_confirm
from tests.orders.conftest import make_cart, place

pytestmark = pytest.mark.django_db


def _paid_general_sale_order(localstripe, general_tier):
    placed = place(make_cart(tier=general_tier))
    browser_confirm(
        base=localstripe.base, intent_id=placed.order.stripe_payment_intent_id, card_number=CARD_OK
    )
    services.order_sync_payment(order_id=placed.order.pk)
    order = placed.order
    order.refresh_from_db()
    assert (order.status, order.payment_status) == (
        OrderStatus.READY_TO_SHIP,
        PaymentStatus.CAPTURED,
    )
    return order


def _staff(email: str, *codenames: str):
    user = get_user_model().objects.create_user(
        email=email, password="x-Strong-pass-1", is_staff=True
    )
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="orders", codename__in=codenames)
    )
    return get_user_model().objects.get(pk=user.pk)  # fresh permission cache


def test_a_dispatch_clerk_who_is_not_a_pharmacist_ships_a_general_sale_order_from_the_admin(
    localstripe, general_tier, client, django_capture_on_commit_callbacks
):
    order = _paid_general_sale_order(localstripe, general_tier)
    clerk = _staff("clerk@pharmacy.example", "mark_shipped", "view_shipment")
    assert not is_pharmacist(clerk)
    client.force_login(clerk)

    add = reverse("admin:orders_shipment_add")
    form = client.get(add)
    assert form.status_code == 200
    assert f'value="{order.pk}"' in form.content.decode()  # offered: it is ready to ship
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            add, {"order": order.pk, "carrier": "UPS", "tracking_number": "1Z999AA10123456784"}
        )
    assert response.status_code == 302

    order.refresh_from_db()
    assert order.status == OrderStatus.SHIPPED
    shipment = Shipment.objects.get(order=order)
    assert (shipment.carrier, shipment.tracking_number, shipment.by) == (
        "UPS",
        "1Z999AA10123456784",
        clerk,
    )
    email = OutboundEmail.objects.get(order=order, kind=EmailKind.SHIPPED)
    assert email.context["tracking_url"] == "https://www.ups.com/track?tracknum=1Z999AA10123456784"
    # Shipped orders are no longer offered.
    assert f'value="{order.pk}"' not in client.get(add).content.decode()


def test_staff_without_the_shipping_permission_cannot_add_a_shipment(
    localstripe, general_tier, client
):
    order = _paid_general_sale_order(localstripe, general_tier)
    client.force_login(_staff("viewer@pharmacy.example", "view_order", "view_shipment"))
    add = reverse("admin:orders_shipment_add")
    assert client.get(add).status_code == 403
    assert (
        client.post(
            add, {"order": order.pk, "carrier": "UPS", "tracking_number": "1Z9"}
        ).status_code
        == 403
    )
    order.refresh_from_db()
    assert order.status == OrderStatus.READY_TO_SHIP and not Shipment.objects.exists()
