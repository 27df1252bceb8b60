"""Prescriptions on file: recording, refill to cart and checkout, the pharmacist's checks,
fill accounting at capture (exactly once), order again."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, connections, transaction
from django.urls import reverse
from django.utils import timezone

from cart.models import Cart
from checkout.placement import order_place
from notifications.models import EmailKind, OutboundEmail
from notifications.services import email_render
from orders import services
from orders.state import OrderStatus, PaymentStatus
from prescriptions import refill_cart, refill_review, refill_rules
from prescriptions.decisions import ReviewError
from prescriptions.models import (
    CartRefill,
    OrderRefill,
    PatientDetails,
    PrescriptionOnFile,
    PrescriptionOnFileEvent,
)
from tests.factories import UserFactory
from tests.orders.conftest import ADDRESS, make_cart
from tests.prescriptions.prescription_support import captured_minor, make_pharmacist
from tests.prescriptions.refills.support import age_last_fill, approve_first_order, place_refill

pytestmark = pytest.mark.django_db(transaction=False)


def test_approving_keeps_the_prescription_on_file_with_its_first_fill(localstripe, baclofen_90):
    user, order, record = approve_first_order(localstripe, baclofen_90, refills=3)
    order.refresh_from_db()
    assert (order.status, order.payment_status) == (
        OrderStatus.READY_TO_SHIP,
        PaymentStatus.CAPTURED,
    )
    assert (record.user, record.medicine, record.strength, record.patient_name) == (
        user,
        "Baclofen",
        "10mg",
        "Jane Doe",
    )
    assert (record.refills_left, record.last_fill_pills, record.last_filled_on) == (
        3,
        90,
        timezone.localdate(),
    )
    assert record.expires_on == record.date_written + timedelta(days=365)
    assert record.source_prescription is not None and record.source_prescription.order == order
    kinds = list(record.events.values_list("kind", "refills_counted"))
    assert kinds == [("recorded", 0), ("fill", 0)]


def test_database_refuses_more_refills_than_authorised_and_a_zero_dose(localstripe, baclofen_90):
    _, _, record = approve_first_order(localstripe, baclofen_90, refills=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        PrescriptionOnFile.objects.filter(pk=record.pk).update(refills_used=2)
    with pytest.raises(IntegrityError), transaction.atomic():
        PrescriptionOnFile.objects.filter(pk=record.pk).update(daily_dose=0)
    with pytest.raises(ValueError):
        record.events.first().save()


def test_refill_checks_out_without_prescription_and_counts_only_at_capture(
    localstripe, baclofen_90
):
    _, _, record = approve_first_order(localstripe, baclofen_90, refills=3)
    age_last_fill(record, days=25)  # 90 pills at 3 a day = 30 days; 75 % elapsed after 23
    refill = place_refill(localstripe, record, baclofen_90)
    assert refill.status == OrderStatus.AWAITING_REVIEW
    assert not refill.prescriptions.exists()  # no new prescription was asked for
    assert PatientDetails.objects.get(order=refill).name == "Jane Doe"
    record.refresh_from_db()
    assert record.refills_left == 3  # authorised but not captured: nothing counted yet

    refill_review.refill_approve(order=refill, by=make_pharmacist(), submission_key=uuid.uuid4())
    refill.refresh_from_db()
    record.refresh_from_db()
    assert (refill.status, refill.payment_status) == (
        OrderStatus.READY_TO_SHIP,
        PaymentStatus.CAPTURED,
    )
    assert captured_minor(localstripe, refill.stripe_payment_intent_id) == int(
        refill.total.amount * 100
    )
    assert (record.refills_left, record.last_filled_on) == (2, timezone.localdate())
    # The webhook and the reconciliation report the same capture again: still one fill.
    services.order_sync_payment(order_id=refill.pk)
    services.order_sync_payment(order_id=refill.pk)
    record.refresh_from_db()
    assert record.refills_left == 2
    assert record.events.filter(kind="fill", order=refill).count() == 1


def test_refill_too_soon_is_refused_with_the_date_and_the_hold_released(localstripe, baclofen_90):
    _, _, record = approve_first_order(localstripe, baclofen_90, refills=3)
    age_last_fill(record, days=28)
    refill = place_refill(localstripe, record, baclofen_90)
    age_last_fill(record, days=10)  # e.g. another fill was counted since it was paid for
    # Approving re-checks on the locked prescription and refuses instead (nothing captured).
    review = refill_review.refill_approve(
        order=refill, by=make_pharmacist(), submission_key=uuid.uuid4()
    )
    assert review.action == "rejected"
    refill.refresh_from_db()
    record.refresh_from_db()
    assert (refill.status, refill.payment_status) == (OrderStatus.CANCELED, PaymentStatus.CANCELED)
    assert localstripe.payment_intent(refill.stripe_payment_intent_id)["status"] == "canceled"
    assert record.refills_left == 3
    possible = record.last_filled_on + timedelta(days=23)
    email = OutboundEmail.objects.get(order=refill, kind=EmailKind.PRESCRIPTION_REJECTED)
    body = email_render(email=email).body
    assert "too soon" in body and f"{possible:%B %-d, %Y}" in body


def test_expired_prescription_cannot_be_refilled(localstripe, baclofen_90):
    user, _, record = approve_first_order(localstripe, baclofen_90, refills=3)
    cart = Cart.objects.get_or_create(user=user)[0]
    PrescriptionOnFile.objects.filter(pk=record.pk).update(
        date_written=timezone.localdate() - timedelta(days=400),
        expires_on=timezone.localdate() - timedelta(days=35),
    )
    with pytest.raises(refill_rules.RefillError, match="expired"):
        refill_cart.refill_add_to_cart(
            cart=cart, user=user, record_id=record.pk, tier_id=baclofen_90.pk
        )


def test_checkout_verifies_the_link_server_side(localstripe, baclofen_90, baclofen):
    user, _, record = approve_first_order(localstripe, baclofen_90, refills=3)
    # Someone else's cart line pointing at this prescription: refused at checkout, nothing placed.
    stranger = UserFactory()
    cart = make_cart(tier=baclofen_90, user=stranger)
    CartRefill.objects.create(cart_line=cart.lines.get(), prescription=record)
    with pytest.raises(services.OrderError, match="not for a prescription on your account"):
        order_place(
            cart=cart,
            email=stranger.email,
            address=ADDRESS,
            shipping_method="standard",
            user=stranger,
        )
    # Another strength under the same prescription: refused.
    other_strength = baclofen.dosages.get(strength="25mg").tiers.get(quantity=90)
    cart = Cart.objects.get_or_create(user=user)[0]
    with pytest.raises(refill_rules.RefillError, match="prescribed strength"):
        refill_cart.refill_add_to_cart(
            cart=cart, user=user, record_id=record.pk, tier_id=other_strength.pk
        )
    # Expired after it went in the cart: refused at checkout.
    age_last_fill(record, days=28)
    refill_cart.refill_add_to_cart(
        cart=cart, user=user, record_id=record.pk, tier_id=baclofen_90.pk
    )
    PrescriptionOnFile.objects.filter(pk=record.pk).update(
        date_written=timezone.localdate() - timedelta(days=400),
        expires_on=timezone.localdate() - timedelta(days=1),
    )
    with pytest.raises(services.OrderError, match="expired"):
        order_place(
            cart=cart, email=user.email, address=ADDRESS, shipping_method="standard", user=user
        )
    assert not OrderRefill.objects.exists()


def test_larger_pack_needs_the_refills_to_cover_it(localstripe, baclofen_90, baclofen):
    user, _, record = approve_first_order(localstripe, baclofen_90, refills=1)
    packs = {
        p["tier"].quantity: (p["refills_needed"], p["allowed"])
        for p in refill_rules.refill_packs(record)
    }
    assert packs[60] == (1, True) and packs[90] == (1, True) and packs[180] == (2, False)
    big = baclofen.dosages.get(strength="10mg").tiers.get(quantity=180)
    with pytest.raises(refill_rules.RefillError, match="would use 2 refills"):
        refill_cart.refill_add_to_cart(
            cart=Cart.objects.get_or_create(user=user)[0],
            user=user,
            record_id=record.pk,
            tier_id=big.pk,
        )


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_approve_and_webhook_at_once_count_one_refill(localstripe, baclofen_90):
    _, _, record = approve_first_order(localstripe, baclofen_90, refills=3)
    age_last_fill(record, days=28)
    refill = place_refill(localstripe, record, baclofen_90)
    pharmacist = make_pharmacist()
    barrier = threading.Barrier(3)
    errors: list = []

    def act(action):
        try:
            barrier.wait(timeout=10)
            action()
        except Exception as exc:  # noqa: BLE001 - a loser may be told the order moved on
            errors.append(exc)
        finally:
            connections.close_all()

    actions = [
        lambda: refill_review.refill_approve(
            order=refill, by=pharmacist, submission_key=uuid.uuid4()
        ),
        lambda: services.order_sync_payment(order_id=refill.pk),
        lambda: services.order_sync_payment(order_id=refill.pk),
    ]
    threads = [threading.Thread(target=act, args=(a,)) for a in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not [e for e in errors if not isinstance(e, ReviewError)], errors
    # One more report after everything settled.
    services.order_sync_payment(order_id=refill.pk)
    record.refresh_from_db()
    assert record.refills_left == 2
    assert (
        PrescriptionOnFileEvent.objects.filter(
            prescription=record, kind="fill", order=refill
        ).count()
        == 1
    )


def test_order_again_adds_general_sale_items_and_skips_prescription_ones(
    client, localstripe, baclofen_90, general_tier
):
    user, order, _ = approve_first_order(localstripe, baclofen_90)
    general = order_place(
        cart=make_cart(tier=general_tier, packages=2, user=UserFactory()),
        email="x@example.com",
        address=ADDRESS,
        shipping_method="standard",
    ).order
    general.user = user
    general.save(update_fields=["user"])
    client.force_login(user)
    client.post(reverse("refills:order_again", args=[general.number]))
    client.post(reverse("refills:order_again", args=[order.number]))
    cart = Cart.objects.get(user=user)
    assert list(cart.lines.values_list("tier_id", "packages")) == [(general_tier.pk, 2)]
    other = UserFactory()
    client.force_login(other)
    assert client.post(reverse("refills:order_again", args=[order.number])).status_code == 404


def test_the_plain_approval_cannot_skip_the_refill_checks(localstripe, baclofen_90):
    from prescriptions.decisions import (
        ReviewError,
        prescription_approve,
        prescription_approve_with_changes,
    )

    _, _, record = approve_first_order(localstripe, baclofen_90, refills=3)
    age_last_fill(record, days=28)
    refill = place_refill(localstripe, record, baclofen_90)
    age_last_fill(record, days=10)  # too soon now: the refill checks would refuse it
    pharmacist = make_pharmacist()
    with pytest.raises(ReviewError, match="Approve refill"):
        prescription_approve(order=refill, by=pharmacist, submission_key=uuid.uuid4())
    line = refill.lines.get()
    with pytest.raises(ReviewError, match="Approve refill"):
        prescription_approve_with_changes(
            order=refill,
            by=pharmacist,
            approved_packages={line.pk: 1},
            note="Cut.",
            submission_key=uuid.uuid4(),
        )
    refill.refresh_from_db()
    record.refresh_from_db()
    assert (refill.status, refill.payment_status) == (
        OrderStatus.AWAITING_REVIEW,
        PaymentStatus.AUTHORIZED,
    )
    assert record.refills_left == 3
