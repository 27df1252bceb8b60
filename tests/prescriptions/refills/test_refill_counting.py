"""Refills are counted exactly once and never past the refills authorised: under concurrency, for
packs worth two fills, and in the database itself."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import IntegrityError, connection, connections, transaction
from django.utils import timezone

from notifications.models import EmailKind, OutboundEmail
from orders.state import OrderStatus, PaymentStatus
from prescriptions import on_file_record, refill_review
from prescriptions.models import PrescriptionOnFile, PrescriptionOnFileEvent, ReviewAction
from tests.catalog.test_lowest_pill_price import run_at_once
from tests.prescriptions.prescription_support import captured_minor, make_pharmacist
from tests.prescriptions.refills.support import age_last_fill, approve_first_order, place_refill


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_two_refills_approved_at_once_with_one_left_capture_once(localstripe, baclofen_90):
    _, _, record = approve_first_order(localstripe, baclofen_90, refills=1)
    age_last_fill(record, days=28)
    first, second = (
        place_refill(localstripe, record, baclofen_90),
        place_refill(localstripe, record, baclofen_90),
    )
    pharmacists = make_pharmacist(), make_pharmacist()
    barrier = threading.Barrier(2)
    results: list = []

    def approve(order, pharmacist):
        def run():
            try:
                barrier.wait(timeout=10)
                results.append(
                    refill_review.refill_approve(
                        order=order, by=pharmacist, submission_key=uuid.uuid4()
                    )
                )
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                results.append(exc)
            finally:
                connections.close_all()

        return run

    run_at_once(approve(first, pharmacists[0]), approve(second, pharmacists[1]))

    assert sorted(getattr(r, "action", repr(r)) for r in results) == [
        ReviewAction.APPROVED,
        ReviewAction.REJECTED,
    ], results
    orders = [first, second]
    for order in orders:
        order.refresh_from_db()
    won = next(o for o in orders if o.payment_status == PaymentStatus.CAPTURED)
    lost = next(o for o in orders if o is not won)
    assert captured_minor(localstripe, won.stripe_payment_intent_id) == int(won.total.amount * 100)
    assert (lost.status, lost.payment_status) == (OrderStatus.CANCELED, PaymentStatus.CANCELED)
    assert localstripe.payment_intent(lost.stripe_payment_intent_id)["status"] == "canceled"
    record.refresh_from_db()
    assert (record.refills_used, record.refills_left) == (1, 0)
    fills = list(
        PrescriptionOnFileEvent.objects.filter(prescription=record, kind="fill").values_list(
            "order_id", "refills_counted"
        )
    )
    assert sorted(fills) == sorted([(record.source_order_id, 0), (won.pk, 1)])
    # The patient of the refused order is told why, not charged.
    email = OutboundEmail.objects.get(order=lost, kind=EmailKind.PRESCRIPTION_REJECTED)
    assert "All the refills on your prescription have been used" in email.context["reason"]


@pytest.mark.django_db
def test_a_pack_worth_two_fills_uses_two_refills(localstripe, baclofen_90, baclofen):
    big = baclofen.dosages.get(strength="10mg").tiers.get(quantity=180)
    _, _, record = approve_first_order(localstripe, baclofen_90, refills=3)
    age_last_fill(record, days=28)
    refill = place_refill(localstripe, record, big)
    review = refill_review.refill_approve(
        order=refill, by=make_pharmacist(), submission_key=uuid.uuid4()
    )
    assert review.action == ReviewAction.APPROVED
    record.refresh_from_db()
    assert (record.refills_used, record.refills_left, record.last_fill_pills) == (2, 1, 180)
    fill = PrescriptionOnFileEvent.objects.get(prescription=record, kind="fill", order=refill)
    assert (fill.refills_counted, fill.fill_number) == (2, 2)


@pytest.mark.django_db
def test_a_pack_needing_more_refills_than_left_is_refused_not_clamped(
    localstripe, baclofen_90, baclofen
):
    big = baclofen.dosages.get(strength="10mg").tiers.get(quantity=180)
    _, _, record = approve_first_order(localstripe, baclofen_90, refills=3)
    age_last_fill(record, days=28)
    refill = place_refill(localstripe, record, big)
    # The pharmacist lowers the refills written to 1 after the order was paid for.
    on_file_record.prescription_on_file_change(
        record=record, by=make_pharmacist(), note="Prescriber: one refill.", refills_authorised=1
    )
    review = refill_review.refill_approve(
        order=refill, by=make_pharmacist(), submission_key=uuid.uuid4()
    )
    assert review.action == ReviewAction.REJECTED
    refill.refresh_from_db()
    record.refresh_from_db()
    assert refill.payment_status == PaymentStatus.CANCELED and record.refills_used == 0
    assert not PrescriptionOnFileEvent.objects.filter(order=refill, kind="fill").exists()


@pytest.mark.django_db
def test_the_database_refuses_a_direct_over_fill(localstripe, baclofen_90):
    _, _, record = approve_first_order(localstripe, baclofen_90, refills=1)
    age_last_fill(record, days=28)
    refill = place_refill(localstripe, record, baclofen_90)
    refill_review.refill_approve(order=refill, by=make_pharmacist(), submission_key=uuid.uuid4())
    record.refresh_from_db()
    assert record.refills_left == 0

    def fill(**fields):
        with pytest.raises(IntegrityError), transaction.atomic():
            PrescriptionOnFileEvent.objects.create(
                prescription=record,
                kind="fill",
                order=None,
                pills=90,
                filled_on=timezone.localdate(),
                **fields,
            )

    fill(refills_counted=1, fill_number=2)  # past the one refill authorised
    fill(refills_counted=1, fill_number=1)  # the same number twice
    fill(refills_counted=0, fill_number=1)  # a refill that uses no refill
    fill(refills_counted=1)  # not numbered
    with pytest.raises(IntegrityError), transaction.atomic():
        PrescriptionOnFile.objects.filter(pk=record.pk).update(refills_used=2)
    # Within the refills authorised, the same row is accepted.
    PrescriptionOnFile.objects.filter(pk=record.pk).update(refills_authorised=2)
    PrescriptionOnFileEvent.objects.create(
        prescription=record,
        kind="fill",
        pills=90,
        filled_on=timezone.localdate(),
        refills_counted=1,
        fill_number=2,
    )
