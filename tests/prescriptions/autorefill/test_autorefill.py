"""Auto-refill (issue 25) against localstripe and PostgreSQL: opting in saves only Stripe's ids
and the card's brand and last four digits; the due date never comes before the too-soon day;
the order goes to the pharmacist's refill queue with an off-session hold; a declined card, a bank
asking for authentication, an expired prescription, no refills left or a lapsed consent pause
it and tell the patient; controlled substances are refused at opt-in and at placement."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from catalog.models import LegalClass, Product
from notifications.models import EmailKind, OutboundEmail
from notifications.services import email_render
from orders.models import Order
from orders.state import OrderStatus, PaymentStatus
from prescriptions import autorefill as service
from prescriptions import autorefill_rules as rules
from prescriptions import refill_review as records
from prescriptions.models import (
    AutoRefill,
    AutoRefillRun,
    AutoRefillStatus,
    OrderRefill,
    PauseReason,
    PrescriptionOnFile,
    PrescriptionOnFileEvent,
)
from tests.localstripe import CARD_3DS, CARD_DECLINED
from tests.prescriptions.prescription_support import captured_minor, make_pharmacist

from .support import ADDRESS, due_today, on_file, opt_in, set_last_fill

pytestmark = pytest.mark.django_db(transaction=True)


def steps(record) -> list[str]:
    return [
        e.changes.get("step")
        for e in PrescriptionOnFileEvent.objects.filter(
            prescription=record, kind="autorefill"
        ).order_by("id")
    ]


def test_opt_in_keeps_only_stripe_ids_brand_and_last4_and_records_consent(localstripe, baclofen_90):
    record = on_file(localstripe, baclofen_90, filled_days_ago=10)
    autorefill = opt_in(localstripe, record, baclofen_90)
    assert autorefill.status == AutoRefillStatus.ACTIVE
    assert autorefill.stripe_payment_method_id.startswith("pm_")
    assert autorefill.stripe_customer_id.startswith("cus_")
    assert (autorefill.card_brand, autorefill.card_last4) == ("visa", "4242")
    # The first due date is the too-soon day: 90 pills at 3 a day = 30 days, 75 % = day 23.
    assert autorefill.next_due_on == record.last_filled_on + timedelta(days=23)
    assert autorefill.consent_until == timezone.localdate() + timedelta(days=364)
    for words in ("Baclofen 10mg, one pack of 90", "hold", "pharmacist approves", "one year"):
        assert words in autorefill.consent_text
    assert steps(record) == ["opted_in"]
    # Nothing in the shop's tables holds a card number.
    row = AutoRefill.objects.filter(pk=autorefill.pk).values().get()
    assert not any("4242424242424242" in str(value) for value in row.values())
    email = OutboundEmail.objects.get(kind=EmailKind.AUTOREFILL_STARTED)
    message = email_render(email=email)
    assert "baclofen" not in message.subject.casefold()
    assert "baclofen" not in message.body.casefold()


def test_the_due_date_is_the_too_soon_day_exactly(localstripe, baclofen_90):
    record = on_file(localstripe, baclofen_90, filled_days_ago=22)  # too soon until tomorrow
    autorefill = opt_in(localstripe, record, baclofen_90)
    tomorrow = timezone.localdate() + timedelta(days=1)
    assert autorefill.next_due_on == tomorrow
    # Forced due today, one day before the too-soon day: no order, the date goes back to it.
    due_today(autorefill)
    assert service.autorefills_place_due() == 0
    autorefill.refresh_from_db()
    assert autorefill.next_due_on == tomorrow
    assert (
        not Order.objects.filter(refills__prescription=record)
        .exclude(pk=record.source_order_id)
        .exists()
    )
    # On the too-soon day itself the order is placed, held off-session, waiting for the pharmacist.
    set_last_fill(record, days_ago=23)
    due_today(autorefill)
    assert service.autorefills_place_due() == 1
    run = AutoRefillRun.objects.get(autorefill=autorefill)
    order = run.order
    assert (order.status, order.payment_status) == (
        OrderStatus.AWAITING_REVIEW,
        PaymentStatus.AUTHORIZED,
    )
    assert OrderRefill.objects.filter(order=order, prescription=record).exists()
    assert (
        localstripe.payment_intent(order.stripe_payment_intent_id)["status"] == "requires_capture"
    )
    autorefill.refresh_from_db()
    assert autorefill.next_due_on == timezone.localdate() + timedelta(days=23)
    assert steps(record)[-3:] == ["date_moved", "placing", "placed"]
    # The pharmacist approves it like any refill: captured, one refill counted.
    records.refill_approve(order=order, by=make_pharmacist())
    order.refresh_from_db()
    record.refresh_from_db()
    assert order.payment_status == PaymentStatus.CAPTURED
    assert captured_minor(localstripe, order.stripe_payment_intent_id) == int(
        order.total.amount * 100
    )
    assert record.refills_left == 2


def test_a_declined_saved_card_pauses_and_tells_the_patient(localstripe, baclofen_90):
    record = on_file(localstripe, baclofen_90, filled_days_ago=25)
    autorefill = opt_in(localstripe, record, baclofen_90, card=CARD_DECLINED)
    due_today(autorefill)
    assert service.autorefills_place_due() == 0
    autorefill.refresh_from_db()
    assert (autorefill.status, autorefill.pause_reason) == (
        AutoRefillStatus.PAUSED,
        PauseReason.DECLINED,
    )
    run = AutoRefillRun.objects.get(autorefill=autorefill)
    assert run.outcome == AutoRefillRun.Outcome.REFUSED and run.order is None
    assert not Order.objects.filter(
        refills__prescription=record, payment_status=PaymentStatus.AUTHORIZED
    ).exists()
    email = OutboundEmail.objects.get(kind=EmailKind.AUTOREFILL_PAUSED)
    message = email_render(email=email)
    assert message.subject == "Your auto-refill is paused"
    assert "declined" in message.body
    assert steps(record)[-1] == "paused"
    # A second run the same day places nothing and sends nothing more.
    assert service.autorefills_place_due() == 0
    assert OutboundEmail.objects.filter(kind=EmailKind.AUTOREFILL_PAUSED).count() == 1


def test_a_bank_asking_for_authentication_pauses_and_releases_the_attempt(localstripe, baclofen_90):
    record = on_file(localstripe, baclofen_90, filled_days_ago=25)
    autorefill, secret, _ = service.autorefill_start(
        user=record.user,
        record_id=record.pk,
        tier_id=baclofen_90.pk,
        address=ADDRESS,
        shipping_method="standard",
    )
    # The 3-D Secure card is confirmed on session when saved (the patient answers the dialog).
    import stripe

    from tests.localstripe import _use

    _use(localstripe.base)
    seti = secret.split("_secret_")[0]
    stripe.SetupIntent.confirm(
        seti,
        payment_method_data={
            "type": "card",
            "card": {"number": CARD_3DS, "exp_month": 12, "exp_year": 2034, "cvc": "123"},
        },
    )
    stripe.SetupIntent.confirm(seti)  # "Complete authentication"
    service.autorefill_confirm(user=record.user, record_id=record.pk, setup_intent_id=seti)
    autorefill.refresh_from_db()
    due_today(autorefill)
    assert service.autorefills_place_due() == 0
    autorefill.refresh_from_db()
    assert autorefill.pause_reason == PauseReason.AUTHENTICATION
    order = (
        Order.objects.filter(refills__prescription=record).exclude(pk=record.source_order_id).get()
    )
    assert order.status == OrderStatus.CANCELED
    assert (
        "confirm"
        in email_render(email=OutboundEmail.objects.get(kind=EmailKind.AUTOREFILL_PAUSED)).body
    )


def test_consent_is_valid_through_its_last_day_and_lapses_the_day_after(localstripe, baclofen_90):
    record = on_file(localstripe, baclofen_90, filled_days_ago=25)
    autorefill = opt_in(localstripe, record, baclofen_90)
    today = timezone.localdate()
    AutoRefill.objects.filter(pk=autorefill.pk).update(consent_until=today, next_due_on=today)
    assert service.autorefills_place_due() == 1  # the last day of the consent: placed
    other = on_file(localstripe, baclofen_90, filled_days_ago=25)
    lapsed = opt_in(localstripe, other, baclofen_90)
    AutoRefill.objects.filter(pk=lapsed.pk).update(
        consent_until=today - timedelta(days=1), next_due_on=today
    )
    assert service.autorefills_place_due() == 0
    lapsed.refresh_from_db()
    assert (lapsed.status, lapsed.pause_reason) == (
        AutoRefillStatus.PAUSED,
        PauseReason.CONSENT_EXPIRED,
    )
    assert rules.consent_until(today) - today == timedelta(days=364)


def test_controlled_substances_are_refused_at_opt_in_and_at_placement(localstripe, baclofen_90):
    record = on_file(localstripe, baclofen_90, filled_days_ago=25)
    autorefill = opt_in(localstripe, record, baclofen_90)
    Product.objects.filter(pk=baclofen_90.dosage.product_id).update(
        legal_class=LegalClass.CONTROLLED
    )
    due_today(autorefill)
    assert service.autorefills_place_due() == 0
    autorefill.refresh_from_db()
    assert autorefill.pause_reason == PauseReason.CONTROLLED
    assert not AutoRefillRun.objects.exists()
    with pytest.raises(service.AutoRefillError, match="Controlled substances"):
        service.autorefill_start(
            user=record.user,
            record_id=record.pk,
            tier_id=baclofen_90.pk,
            address=service.Address(
                name="J", line1="1 A St", city="Albany", state="NY", zip_code="12207"
            ),
            shipping_method="standard",
        )
    assert steps(record)[-1] == "refused"


def test_expired_prescription_and_no_refills_left_pause_and_ask_for_a_renewal(
    localstripe, baclofen_90, settings
):
    settings.AUTOREFILL_RENEWAL_REQUEST = (
        "tests.prescriptions.autorefill.test_autorefill.renewal_spy"
    )
    RENEWALS.clear()
    expired = on_file(localstripe, baclofen_90, filled_days_ago=25)
    a = opt_in(localstripe, expired, baclofen_90)
    PrescriptionOnFile.objects.filter(pk=expired.pk).update(
        date_written=timezone.localdate() - timedelta(days=400),
        expires_on=timezone.localdate() - timedelta(days=1),
    )
    used_up = on_file(localstripe, baclofen_90, filled_days_ago=25, refills=1)
    b = opt_in(localstripe, used_up, baclofen_90)
    PrescriptionOnFile.objects.filter(pk=used_up.pk).update(refills_used=1)
    due_today(a)
    due_today(b)
    assert service.autorefills_place_due() == 0
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.pause_reason, b.pause_reason) == (PauseReason.EXPIRED, PauseReason.NO_REFILLS)
    assert RENEWALS == [used_up.pk]
    assert OutboundEmail.objects.filter(kind=EmailKind.AUTOREFILL_PAUSED).count() == 2


RENEWALS: list[int] = []


def renewal_spy(*, prescription, by) -> None:
    assert by is None  # the shop asks, not a person
    RENEWALS.append(prescription.pk)


def test_a_refill_canceled_before_it_is_dispensed_is_never_charged(localstripe, baclofen_90):
    record = on_file(localstripe, baclofen_90, filled_days_ago=25)
    autorefill = opt_in(localstripe, record, baclofen_90)
    due_today(autorefill)
    order = service.autorefill_place(autorefill_id=autorefill.pk)
    service.autorefill_cancel_order(user=record.user, order_number=order.number)
    order.refresh_from_db()
    assert (order.status, order.payment_status) == (OrderStatus.CANCELED, PaymentStatus.CANCELED)
    assert localstripe.payment_intent(order.stripe_payment_intent_id)["status"] == "canceled"
    # Once the pharmacist has approved and captured, the patient can no longer cancel it here.
    set_last_fill(record, days_ago=25)
    due_today(autorefill)
    AutoRefillRun.objects.filter(autorefill=autorefill).delete()
    second = service.autorefill_place(autorefill_id=autorefill.pk)
    records.refill_approve(order=second, by=make_pharmacist())
    with pytest.raises(service.AutoRefillError, match="already been approved"):
        service.autorefill_cancel_order(user=record.user, order_number=second.number)


def test_stopping_or_closing_the_account_ends_auto_refill_and_removes_the_card(
    localstripe, baclofen_90
):
    from accounts.services import account_close
    from tests.localstripe import _use

    record = on_file(localstripe, baclofen_90, filled_days_ago=25)
    autorefill = opt_in(localstripe, record, baclofen_90)
    method = autorefill.stripe_payment_method_id
    account_close(user=record.user)
    autorefill.refresh_from_db()
    assert (autorefill.status, autorefill.stripe_payment_method_id) == (
        AutoRefillStatus.STOPPED,
        "",
    )
    import stripe

    _use(localstripe.base)
    assert stripe.PaymentMethod.retrieve(method)["customer"] is None  # detached at Stripe
    AutoRefill.objects.filter(pk=autorefill.pk).update(next_due_on=timezone.localdate())
    assert service.autorefills_place_due() == 0
    assert steps(record)[-1] == "stopped"


def test_no_refills_left_asks_the_prescriber_through_the_renewal_queue(localstripe, baclofen_90):
    """With the shop's own renewal service (the default setting): a renewal request waits for
    the pharmacist, asked by the shop, and the step is in the prescription's history."""
    from prescriptions.models import RenewalRequest

    record = on_file(localstripe, baclofen_90, filled_days_ago=25, refills=1)
    autorefill = opt_in(localstripe, record, baclofen_90)
    PrescriptionOnFile.objects.filter(pk=record.pk).update(refills_used=1)
    due_today(autorefill)
    assert service.autorefills_place_due() == 0
    renewal = RenewalRequest.objects.get(prescription=record)
    assert renewal.is_open and renewal.requested_by is None
    assert steps(record)[-2:] == ["paused", "renewal_requested"]
