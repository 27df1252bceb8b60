"""Two pharmacists act on the same order at the same moment: one decision wins, one capture."""

import threading
import uuid

import pytest
from django.db import connection, connections

from orders.models import OrderEvent
from orders.state import OrderStatus, PaymentStatus
from prescriptions import decisions as rx
from prescriptions.models import PrescriptionReview
from tests.orders.conftest import make_cart
from tests.prescriptions.prescription_support import (
    authorise,
    captured_minor,
    make_pharmacist,
    place_rx,
)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
def test_approve_and_reject_at_once_leave_one_decision(transactional_db, localstripe, baclofen_90):
    order = authorise(localstripe, place_rx(make_cart(tier=baclofen_90), tier=baclofen_90))
    first, second = make_pharmacist(), make_pharmacist()
    barrier = threading.Barrier(2)
    results: list = []

    def act(action):
        try:
            barrier.wait(timeout=10)
            results.append(action())
        except rx.ReviewError as exc:
            results.append(exc)
        finally:
            connections.close_all()

    actions = [
        lambda: rx.prescription_approve(order=order, by=first, submission_key=uuid.uuid4()),
        lambda: rx.prescription_reject(
            order=order, by=second, reason="Not valid.", submission_key=uuid.uuid4()
        ),
    ]
    threads = [threading.Thread(target=act, args=(a,)) for a in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    decisions = [r for r in results if isinstance(r, PrescriptionReview)]
    refusals = [r for r in results if isinstance(r, rx.ReviewError)]
    assert len(decisions) == 1 and len(refusals) == 1, results
    assert "no longer awaiting review" in refusals[0].message
    order.refresh_from_db()
    intent = localstripe.payment_intent(order.stripe_payment_intent_id)
    if decisions[0].action == "approved":
        assert (order.status, order.payment_status) == (
            OrderStatus.READY_TO_SHIP,
            PaymentStatus.CAPTURED,
        )
        assert intent["status"] == "succeeded"
        assert captured_minor(localstripe, intent["id"]) == int(order.total.amount * 100)
    else:
        assert (order.status, order.payment_status) == (
            OrderStatus.CANCELED,
            PaymentStatus.CANCELED,
        )
        assert intent["status"] == "canceled"
    assert PrescriptionReview.objects.filter(order=order).count() == 1
    assert (
        OrderEvent.objects.filter(order=order, kind=OrderEvent.Kind.STATUS)
        .exclude(to_status=OrderStatus.AWAITING_REVIEW)
        .count()
        == 1
    )
