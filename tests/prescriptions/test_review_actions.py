"""Pharmacist review against localstripe: the hold is captured only on approval, for what was approved."""

from __future__ import annotations

import uuid

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from djmoney.money import Money

from checkout.placement import order_place
from notifications.models import EmailKind, OutboundEmail
from orders.models import OrderLine, Shipment
from orders.state import OrderStatus, PaymentStatus
from prescriptions import decisions as rx
from prescriptions.models import PrescriptionReview, ReviewAction
from tests.factories import UserFactory
from tests.orders.conftest import make_cart
from tests.prescriptions.prescription_support import (
    approve_data,
    authorise,
    captured_minor,
    make_pharmacist,
    place_rx,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def pharmacist(db):
    return make_pharmacist(email="pharmacist@pharmacy.example")


def emails(order, kind):
    return list(OutboundEmail.objects.filter(order=order, kind=kind))


def test_approval_captures_the_whole_hold(localstripe, baclofen_90, pharmacist):
    order = authorise(
        localstripe, place_rx(make_cart(tier=baclofen_90, packages=2), tier=baclofen_90)
    )
    intent = localstripe.payment_intent(order.stripe_payment_intent_id)
    assert intent["status"] == "requires_capture"  # authorised, not captured

    review = rx.prescription_approve(order=order, by=pharmacist, submission_key=uuid.uuid4())

    order.refresh_from_db()
    intent = localstripe.payment_intent(order.stripe_payment_intent_id)
    assert intent["status"] == "succeeded"
    assert captured_minor(localstripe, intent["id"]) == int(order.total.amount * 100)
    assert (order.status, order.payment_status) == (
        OrderStatus.READY_TO_SHIP,
        PaymentStatus.CAPTURED,
    )
    assert order.amount_captured == order.total
    assert (review.action, review.by, review.approved_total) == (
        ReviewAction.APPROVED,
        pharmacist,
        order.total,
    )
    assert len(emails(order, EmailKind.PRESCRIPTION_APPROVED)) == 1


def test_rejection_cancels_the_payment_intent_and_charges_nothing(
    localstripe, baclofen_90, pharmacist
):
    baclofen_90.stock = 10
    baclofen_90.save()
    order = authorise(
        localstripe, place_rx(make_cart(tier=baclofen_90, packages=2), tier=baclofen_90)
    )
    baclofen_90.refresh_from_db()
    assert baclofen_90.stock == 8

    rx.prescription_reject(order=order, by=pharmacist, reason="The prescription has expired.")

    order.refresh_from_db()
    baclofen_90.refresh_from_db()
    assert localstripe.payment_intent(order.stripe_payment_intent_id)["status"] == "canceled"
    assert (order.status, order.payment_status) == (OrderStatus.CANCELED, PaymentStatus.CANCELED)
    assert order.amount_captured.amount == 0
    assert baclofen_90.stock == 10
    [email] = emails(order, EmailKind.PRESCRIPTION_REJECTED)
    assert email.context["reason"] == "The prescription has expired."
    assert order.reviews.get().note == "The prescription has expired."


def test_rejection_needs_a_reason(localstripe, baclofen_90, pharmacist):
    order = authorise(localstripe, place_rx(make_cart(tier=baclofen_90), tier=baclofen_90))
    with pytest.raises(rx.ReviewError):
        rx.prescription_reject(order=order, by=pharmacist, reason="   ")
    order.refresh_from_db()
    assert order.status == OrderStatus.AWAITING_REVIEW
    assert (
        localstripe.payment_intent(order.stripe_payment_intent_id)["status"] == "requires_capture"
    )


def test_approval_with_a_reduced_quantity_captures_the_lower_amount(
    localstripe, baclofen_90, pharmacist
):
    baclofen_90.stock = 10
    baclofen_90.save()
    order = authorise(
        localstripe, place_rx(make_cart(tier=baclofen_90, packages=3), tier=baclofen_90)
    )
    line = order.lines.get()
    ordered_total, unit = order.total, line.unit_price
    held = localstripe.payment_intent(order.stripe_payment_intent_id)["amount"]
    assert held == int(ordered_total.amount * 100)

    review = rx.prescription_approve_with_changes(
        order=order,
        by=pharmacist,
        approved_packages={line.pk: 1},
        note="Prescribed for 90 tablets only.",
    )

    order.refresh_from_db()
    line.refresh_from_db()
    expected = Money(ordered_total.amount - 2 * unit.amount, "USD")
    intent = localstripe.payment_intent(order.stripe_payment_intent_id)
    assert intent["status"] == "succeeded"
    assert captured_minor(localstripe, intent["id"]) == int(expected.amount * 100) < held
    assert order.total == expected and order.amount_captured == expected
    assert (order.status, order.payment_status) == (
        OrderStatus.READY_TO_SHIP,
        PaymentStatus.CAPTURED,
    )
    assert line.packages == 1 and line.line_total == unit
    baclofen_90.refresh_from_db()
    assert baclofen_90.stock == 9  # the two packs not approved are back on the shelf
    # The audit record keeps what was ordered.
    assert review.ordered_total == ordered_total and review.approved_total == expected
    assert (
        review.changes[0]["ordered_packages"] == 3 and review.changes[0]["approved_packages"] == 1
    )
    assert review.changes[0]["ordered_line_total"] == str(3 * unit.amount)
    # A later webhook or reconciliation reads the partial capture as it is: no phantom refund.
    from orders import services

    synced = services.order_sync_payment(order_id=order.pk)
    assert (synced.payment_status, synced.amount_captured, synced.amount_refunded.amount) == (
        PaymentStatus.CAPTURED,
        expected,
        0,
    )


def test_approval_with_changes_can_remove_a_line_but_not_all(localstripe, baclofen, pharmacist):
    from cart.models import CartLine
    from catalog.models import PackageTier

    t60 = PackageTier.objects.get(dosage__product=baclofen, dosage__strength="10mg", quantity=60)
    t90 = PackageTier.objects.get(dosage__product=baclofen, dosage__strength="10mg", quantity=90)
    cart = make_cart(tier=t90)
    CartLine.objects.create(cart=cart, tier=t60, packages=1, price_when_added=t60.price)
    from tests.orders.conftest import ADDRESS
    from tests.prescriptions.prescription_support import intake_for

    intake = intake_for(t90)
    intake = type(intake)(
        **{**intake.__dict__, "items": intake.items + intake_for(t60, with_file=False).items}
    )
    placed = order_place(
        cart=cart,
        email="j@example.com",
        address=ADDRESS,
        shipping_method="standard",
        prescription=intake,
    )
    order = authorise(localstripe, placed)
    lines = {line.tier_id: line for line in order.lines.all()}

    with pytest.raises(rx.ReviewError, match="Do not approve"):
        rx.prescription_approve_with_changes(
            order=order,
            by=pharmacist,
            approved_packages={lines[t90.pk].pk: 0, lines[t60.pk].pk: 0},
            note="x",
        )
    with pytest.raises(rx.ReviewError, match="Nothing was changed"):
        rx.prescription_approve_with_changes(
            order=order, by=pharmacist, approved_packages={}, note="x"
        )

    rx.prescription_approve_with_changes(
        order=order,
        by=pharmacist,
        approved_packages={lines[t60.pk].pk: 0},
        note="Only the 90-pack is prescribed.",
    )
    order.refresh_from_db()
    assert list(order.lines.values_list("tier_id", flat=True)) == [t90.pk]
    assert order.amount_captured == Money(t90.price.amount + order.shipping.amount, "USD")
    assert captured_minor(localstripe, order.stripe_payment_intent_id) == int(
        order.amount_captured.amount * 100
    )
    # The removed line's prescription record stays, with what it was for.
    assert order.prescriptions.filter(line__isnull=True).count() == 1


def test_request_information_keeps_the_order_in_review_and_emails_once_per_form(
    localstripe, baclofen_90, pharmacist
):
    order = authorise(localstripe, place_rx(make_cart(tier=baclofen_90), tier=baclofen_90))
    key = uuid.uuid4()
    first = rx.prescription_request_information(
        order=order, by=pharmacist, message="Is the dose 10 mg twice a day?", submission_key=key
    )
    again = rx.prescription_request_information(
        order=order, by=pharmacist, message="Is the dose 10 mg twice a day?", submission_key=key
    )
    assert first.pk == again.pk
    order.refresh_from_db()
    assert order.status == OrderStatus.AWAITING_REVIEW
    assert (
        localstripe.payment_intent(order.stripe_payment_intent_id)["status"] == "requires_capture"
    )
    [email] = emails(order, EmailKind.INFORMATION_REQUESTED)
    assert email.context["message"] == "Is the dose 10 mg twice a day?"
    # A new question (another form) is a new email.
    rx.prescription_request_information(
        order=order, by=pharmacist, message="And the prescriber's fax?", submission_key=uuid.uuid4()
    )
    assert len(emails(order, EmailKind.INFORMATION_REQUESTED)) == 2


def test_double_submitted_approval_captures_once(localstripe, baclofen_90, pharmacist, client):
    order = authorise(localstripe, place_rx(make_cart(tier=baclofen_90), tier=baclofen_90))
    client.force_login(pharmacist)
    data = approve_data(order)
    url = reverse("prescriptions:review_approve", args=[order.number])
    assert client.post(url, data).status_code == 302
    assert client.post(url, data).status_code == 302  # the same form again: no-op
    assert order.reviews.count() == 1
    assert order.events.filter(to_status=PaymentStatus.CAPTURED).count() == 1
    # Another approval form for an order already approved is refused with a message, not a 500.
    response = client.post(url, {**data, "submission_key": str(uuid.uuid4())})
    assert response.status_code == 400
    assert "no longer awaiting review" in response.content.decode()
    assert order.reviews.count() == 1


def test_review_pages_drive_all_four_actions(localstripe, baclofen_90, pharmacist, client):
    client.force_login(pharmacist)
    order = authorise(
        localstripe, place_rx(make_cart(tier=baclofen_90, packages=2), tier=baclofen_90)
    )
    page = client.get(reverse("prescriptions:review_order", args=[order.number]))
    assert page.status_code == 200
    body = page.content.decode()
    assert "Jane Doe" in body and "Penicillin" in body and "Open the uploaded copy" in body
    line = order.lines.get()

    # Invalid: more packages than ordered -> form error, nothing captured.
    response = client.post(
        reverse("prescriptions:review_approve", args=[order.number]),
        approve_data(order, packs={line.pk: 3}, note="x"),
    )
    assert response.status_code == 400
    assert (
        localstripe.payment_intent(order.stripe_payment_intent_id)["status"] == "requires_capture"
    )

    response = client.post(
        reverse("prescriptions:review_request_info", args=[order.number]),
        {"submission_key": str(uuid.uuid4()), "message": "Which clinic?"},
    )
    assert response.status_code == 302
    # Fewer packs without a note for the customer: refused, nothing captured.
    response = client.post(
        reverse("prescriptions:review_approve", args=[order.number]),
        approve_data(order, packs={line.pk: 1}),
    )
    assert response.status_code == 400 and "tell the customer why" in response.content.decode()
    assert (
        localstripe.payment_intent(order.stripe_payment_intent_id)["status"] == "requires_capture"
    )
    response = client.post(
        reverse("prescriptions:review_approve", args=[order.number]),
        approve_data(order, packs={line.pk: 1}, note="One pack prescribed."),
    )
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.status == OrderStatus.READY_TO_SHIP
    assert [r.action for r in order.reviews.all()] == [
        ReviewAction.INFORMATION_REQUESTED,
        ReviewAction.APPROVED_WITH_CHANGES,
    ]

    # Ship it from the queue page.
    response = client.post(
        reverse("prescriptions:review_ship", args=[order.number]),
        {"carrier": "USPS", "tracking_number": "9400 1000 0000"},
    )
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.status == OrderStatus.SHIPPED
    assert Shipment.objects.get(order=order).tracking_number == "9400 1000 0000"
    [email] = emails(order, EmailKind.SHIPPED)
    assert (email.context["carrier"], email.context["tracking_number"]) == (
        "USPS",
        "9400 1000 0000",
    )
    assert (
        email.context["tracking_url"]
        == "https://tools.usps.com/go/TrackConfirmAction?tLabels=9400%201000%200000"
    )


def test_reject_from_the_page_needs_a_reason(localstripe, baclofen_90, pharmacist, client):
    client.force_login(pharmacist)
    order = authorise(localstripe, place_rx(make_cart(tier=baclofen_90), tier=baclofen_90))
    url = reverse("prescriptions:review_reject", args=[order.number])
    assert client.post(url, {"submission_key": str(uuid.uuid4()), "reason": ""}).status_code == 400
    assert (
        client.post(
            url, {"submission_key": str(uuid.uuid4()), "reason": "Not a valid prescription."}
        ).status_code
        == 302
    )
    assert localstripe.payment_intent(order.stripe_payment_intent_id)["status"] == "canceled"


def test_orders_without_prescription_items_are_never_held_for_review(
    localstripe, general_tier, pharmacist, client
):
    from orders import services
    from tests.localstripe import CARD_OK, browser_confirm
    from tests.orders.conftest import place

    placed = place(make_cart(tier=general_tier))
    browser_confirm(
        base=localstripe.base, intent_id=placed.order.stripe_payment_intent_id, card_number=CARD_OK
    )
    order = services.order_sync_payment(order_id=placed.order.pk)
    assert (order.status, order.payment_status) == (
        OrderStatus.READY_TO_SHIP,
        PaymentStatus.CAPTURED,
    )
    assert not order.prescriptions.exists() and not hasattr_patient(order)
    client.force_login(pharmacist)
    assert (
        f"order-{order.number}"
        not in client.get(reverse("prescriptions:review_queue")).content.decode()
    )
    with pytest.raises(rx.ReviewError):
        rx.prescription_approve(order=order, by=pharmacist)


def hasattr_patient(order) -> bool:
    from prescriptions.models import PatientDetails

    return PatientDetails.objects.filter(order=order).exists()


def test_only_pharmacists_can_act(localstripe, baclofen_90, client):
    order = authorise(localstripe, place_rx(make_cart(tier=baclofen_90), tier=baclofen_90))
    from django.contrib.auth.models import Group

    pricing = UserFactory(is_staff=True)
    pricing.groups.add(Group.objects.get_or_create(name="pricing")[0])
    customer = order.user or UserFactory()
    urls = [
        reverse("prescriptions:review_approve", args=[order.number]),
        reverse("prescriptions:review_approve_changes", args=[order.number]),
        reverse("prescriptions:review_reject", args=[order.number]),
        reverse("prescriptions:review_request_info", args=[order.number]),
        reverse("prescriptions:review_ship", args=[order.number]),
    ]
    data = {"submission_key": str(uuid.uuid4()), "reason": "no", "message": "?", "note": "x"}
    for user in (customer, pricing):
        client.force_login(user)
        assert client.get(reverse("prescriptions:review_queue")).status_code == 403
        assert (
            client.get(reverse("prescriptions:review_order", args=[order.number])).status_code
            == 403
        )
        for url in urls:
            assert client.post(url, data).status_code == 403
    client.logout()
    response = client.post(urls[0], data)
    assert response.status_code == 302 and reverse("accounts:login") in response["Location"]
    with pytest.raises(PermissionDenied):
        rx.prescription_approve(order=order, by=pricing)
    order.refresh_from_db()
    assert order.status == OrderStatus.AWAITING_REVIEW and not PrescriptionReview.objects.exists()
    assert (
        localstripe.payment_intent(order.stripe_payment_intent_id)["status"] == "requires_capture"
    )


def test_superuser_can_act(localstripe, baclofen_90, client):
    order = authorise(localstripe, place_rx(make_cart(tier=baclofen_90), tier=baclofen_90))
    admin = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(admin)
    response = client.post(
        reverse("prescriptions:review_approve", args=[order.number]), approve_data(order)
    )
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.payment_status == PaymentStatus.CAPTURED


def test_actions_need_csrf(localstripe, baclofen_90, pharmacist):
    from django.test import Client

    order = authorise(localstripe, place_rx(make_cart(tier=baclofen_90), tier=baclofen_90))
    client = Client(enforce_csrf_checks=True)
    client.force_login(pharmacist)
    response = client.post(
        reverse("prescriptions:review_approve", args=[order.number]),
        {"submission_key": str(uuid.uuid4())},
    )
    assert response.status_code == 403
    assert not OrderLine.objects.filter(order=order, packages=0).exists()
    order.refresh_from_db()
    assert order.payment_status == PaymentStatus.AUTHORIZED
