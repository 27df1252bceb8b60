"""Money-moving and clinical staff actions check their own permission where they happen.

Each action is tried as role-limited staff (view-only order clerk, pricing, pharmacist) and as a
superuser, through the admin or the staff pages and through the services: refused without the
permission (403 or an error message, nothing moved, Stripe untouched), carried out with it.
"""

import uuid

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from notifications.models import EmailKind, EmailStatus, OutboundEmail
from notifications.services import email_resend
from orders import services
from orders.emails import order_email
from orders.fulfilment import order_mark_shipped
from orders.models import OrderRefund, Shipment
from orders.state import OrderStatus, PaymentStatus
from prescriptions import decisions as rx
from prescriptions.models import PrescriptionReview
from tests.factories import UserFactory
from tests.localstripe import CARD_OK, browser_confirm
from tests.orders.conftest import make_cart, place
from tests.prescriptions.prescription_support import approve_data, authorise, place_rx
from tests.security.conftest import fresh

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/orders/order/"


def captured_order(localstripe, tier):
    placed = place(make_cart(tier=tier, packages=1))
    browser_confirm(
        base=localstripe.base, intent_id=placed.order.stripe_payment_intent_id, card_number=CARD_OK
    )
    order = services.order_sync_payment(order_id=placed.order.pk)
    assert order.payment_status == PaymentStatus.CAPTURED
    return order


def stripe_refunded(localstripe, order) -> int:
    intent = localstripe.payment_intent(order.stripe_payment_intent_id)
    return sum(
        charge.get("amount_refunded", 0) for charge in (intent.get("charges") or {}).get("data", [])
    )


def test_refund_needs_the_refund_permission_in_the_admin_and_the_service(
    localstripe, general_tier, client, staff
):
    order = captured_order(localstripe, general_tier)
    refund_page = reverse("admin:orders_order_refund", args=[order.pk])
    bulk = {"action": "refund_in_full", "_selected_action": [str(order.pk)], "index": "0"}

    # View-only clerk (the case the issue found): sees orders, is not offered the action, and
    # posting it by hand moves nothing.
    client.force_login(staff.viewer)
    changelist = client.get(CHANGELIST)
    assert (
        changelist.status_code == 200
        and 'value="refund_in_full"' not in changelist.content.decode()
    )
    client.post(CHANGELIST, bulk)
    assert client.get(refund_page).status_code == 403
    assert client.post(refund_page, {"amount": "1.00", "reason": "try"}).status_code == 403
    # Pricing staff cannot see orders at all; the pharmacist reviews but does not refund.
    client.force_login(staff.pricing)
    assert client.get(CHANGELIST).status_code == 403
    assert client.post(CHANGELIST, bulk).status_code == 403
    client.force_login(staff.pharmacist)
    assert 'value="refund_in_full"' not in client.get(CHANGELIST).content.decode()
    client.post(CHANGELIST, bulk)
    assert client.post(refund_page, {"amount": "1.00", "reason": "try"}).status_code == 403
    for user in (staff.viewer, staff.pricing, staff.pharmacist):
        with pytest.raises(PermissionDenied):
            services.order_refund(order=order, amount=None, reason="not allowed", by=user)

    order.refresh_from_db()
    assert order.payment_status == PaymentStatus.CAPTURED and order.amount_refunded.amount == 0
    assert not OrderRefund.objects.exists()
    assert stripe_refunded(localstripe, order) == 0  # Stripe was never asked

    # A superuser, or staff given orders.refund_order, refunds.
    clerk = staff.viewer
    clerk.user_permissions.add(Permission.objects.get(codename="refund_order"))
    client.force_login(fresh(clerk))
    assert 'value="refund_in_full"' in client.get(CHANGELIST).content.decode()
    response = client.post(refund_page, {"amount": "5.00", "reason": "One pack damaged"})
    assert response.status_code == 302
    client.force_login(staff.admin)
    response = client.post(CHANGELIST, bulk, follow=True)
    assert "refunded in full" in response.content.decode()
    order.refresh_from_db()
    assert order.payment_status == PaymentStatus.REFUNDED and order.amount_refunded == order.total
    assert stripe_refunded(localstripe, order) == int(order.total.amount * 100)


def test_each_review_decision_needs_its_own_permission(localstripe, baclofen_90, client, staff):
    order = authorise(localstripe, place_rx(make_cart(tier=baclofen_90), tier=baclofen_90))
    line = order.lines.get()
    # A technician may ask the customer questions, nothing else.
    technician = UserFactory(email="tech@pharmacy.example", is_staff=True)
    technician.user_permissions.add(
        Permission.objects.get(codename="request_prescription_information")
    )

    decisions = {
        "approve": lambda by: rx.prescription_approve(order=order, by=by),
        "approve with changes": lambda by: rx.prescription_approve_with_changes(
            order=order, by=by, approved_packages={line.pk: 0}, note="less"
        ),
        "reject": lambda by: rx.prescription_reject(order=order, by=by, reason="no"),
        "capture": lambda by: services.order_capture_payment(order=order, by=by),
        "cancel": lambda by: services.order_cancel(order=order, by=by, reason="no"),
        "request information": lambda by: rx.prescription_request_information(
            order=order, by=by, message="?"
        ),
    }
    for name, decide in decisions.items():
        for user in (staff.viewer, staff.pricing, technician, None):
            if name == "request information" and user is technician:
                continue
            if user is None and name in ("capture", "cancel"):
                continue  # the shop itself (jobs, webhooks) cancels unpaid orders
            with pytest.raises(PermissionDenied):
                decide(user)
    assert rx.prescription_request_information(
        order=order, by=technician, message="Which dose?"
    ).action

    # Through the staff pages: a pharmacist whose group lost "reject" cannot reject, but can still ask.
    group = Group.objects.get(name="pharmacist")
    group.permissions.remove(Permission.objects.get(codename="reject_prescription"))
    client.force_login(staff.pharmacist)
    key = lambda: str(uuid.uuid4())
    assert (
        client.post(
            reverse("prescriptions:review_reject", args=[order.number]),
            {"submission_key": key(), "reason": "no"},
        ).status_code
        == 403
    )
    order.refresh_from_db()
    assert (order.status, order.payment_status) == (
        OrderStatus.AWAITING_REVIEW,
        PaymentStatus.AUTHORIZED,
    )
    assert (
        localstripe.payment_intent(order.stripe_payment_intent_id)["status"] == "requires_capture"
    )
    assert PrescriptionReview.objects.filter(order=order, action="rejected").count() == 0

    # The clerk with view permissions is not a pharmacist: the review pages refuse every action.
    client.force_login(staff.viewer)
    for name in (
        "review_approve",
        "review_approve_changes",
        "review_reject",
        "review_request_info",
        "review_ship",
    ):
        assert (
            client.post(
                reverse(f"prescriptions:{name}", args=[order.number]), {"submission_key": key()}
            ).status_code
            == 403
        )

    # The pharmacist approves (capture comes with the role) and ships; others cannot ship.
    client.force_login(staff.pharmacist)
    response = client.post(
        reverse("prescriptions:review_approve", args=[order.number]), approve_data(order)
    )
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.payment_status == PaymentStatus.CAPTURED
    for user in (staff.viewer, staff.pricing, technician):
        with pytest.raises(PermissionDenied):
            order_mark_shipped(order=order, by=user, carrier="UPS", tracking_number="1Z999")
    assert not Shipment.objects.exists()
    response = client.post(
        reverse("prescriptions:review_ship", args=[order.number]),
        {"carrier": "UPS", "tracking_number": "1Z999"},
    )
    assert response.status_code == 302
    assert Shipment.objects.get(order=order).by == staff.pharmacist


def test_resending_an_email_needs_the_resend_permission(
    baclofen, client, staff, django_capture_on_commit_callbacks
):
    from tests.notifications.conftest import make_order

    order = make_order(product=baclofen)
    email = order_email(order=order, kind=EmailKind.ORDER_RECEIVED)
    OutboundEmail.objects.filter(pk=email.pk).update(
        status=EmailStatus.FAILED, last_error="SMTP down"
    )
    changelist = reverse("admin:notifications_outboundemail_changelist")
    bulk = {"action": "resend", "_selected_action": [str(email.pk)], "index": "0"}

    client.force_login(staff.viewer)
    assert 'value="resend"' not in client.get(changelist).content.decode()
    client.post(changelist, bulk)
    with pytest.raises(PermissionDenied):
        email_resend(email=email, by=staff.viewer)
    client.force_login(staff.pricing)
    assert client.post(changelist, bulk).status_code == 403
    email.refresh_from_db()
    assert email.status == EmailStatus.FAILED

    client.force_login(staff.pharmacist)
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(changelist, bulk, follow=True)
    assert "queued to be sent again" in response.content.decode()
    email.refresh_from_db()
    assert email.status == EmailStatus.QUEUED
