"""The review queue, the audit record and the periodic work on card holds."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.contrib import admin
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone
from djmoney.money import Money

from notifications.models import DigestEntry, EmailKind, OutboundEmail
from orders.models import Order, OrderEvent, OrderLine, OrderNumber
from orders.state import OrderStatus, PaymentStatus
from orders.tasks import expiring_holds_digest_task
from prescriptions import decisions as rx
from prescriptions import tasks
from prescriptions.models import PatientDetails, Prescription, PrescriptionReview, ReviewAction
from tests.factories import UserFactory
from tests.orders.conftest import make_cart
from tests.prescriptions.prescription_support import authorise, make_pharmacist, place_rx

pytestmark = pytest.mark.django_db


def review_order(*, authorised_days_ago: float = 1, lines: int = 2) -> Order:
    """An order in review as checkout leaves it (no Stripe needed for the queue's reading)."""
    order = Order.objects.create(
        number=OrderNumber.objects.create().number,
        email="patient@example.com",
        status=OrderStatus.AWAITING_REVIEW,
        payment_status=PaymentStatus.AUTHORIZED,
        ship_name="Jane Doe",
        ship_line1="1 Main St",
        ship_city="Albany",
        ship_state="NY",
        ship_zip="12207",
        shipping_method="standard",
        subtotal=Money("40.00", "USD"),
        savings=Money("0", "USD"),
        shipping=Money("0", "USD"),
        total=Money("40.00", "USD"),
        has_prescription_items=True,
        stripe_payment_intent_id=f"pi_fake_{OrderNumber.objects.count()}",
    )
    for i in range(lines):
        line = OrderLine.objects.create(
            order=order,
            product_name=f"Medicine {i}",
            strength="10mg",
            pack_size=30,
            packages=1,
            unit_price=Money("20.00", "USD"),
            per_pill=Money("0.67", "USD"),
            list_price=Money("25.00", "USD"),
            line_total=Money("20.00", "USD"),
            requires_prescription=True,
        )
        Prescription.objects.create(
            order=order,
            line=line,
            description=str(line),
            prescriber_name="Dr. Ruth Okafor",
            prescriber_phone="518-555-0101",
            prescriber_licence="1234567890",
        )
    PatientDetails.objects.create(order=order, name="Jane Doe", date_of_birth=date(1980, 5, 17))
    event = OrderEvent.objects.create(
        order=order, kind=OrderEvent.Kind.PAYMENT, from_status="pending", to_status="authorized"
    )
    OrderEvent.objects.filter(pk=event.pk).update(
        created_at=timezone.now() - timedelta(days=authorised_days_ago)
    )
    return order


@pytest.fixture
def pharmacist(db):
    return make_pharmacist()


# --- The queue -----------------------------------------------------------------------------


def test_queue_lists_orders_in_review_oldest_hold_first_with_time_left(client, pharmacist):
    newer = review_order(authorised_days_ago=1)
    older = review_order(authorised_days_ago=6.5)
    client.force_login(pharmacist)
    body = client.get(reverse("prescriptions:review_queue")).content.decode()
    assert body.index(f"order-{older.number}") < body.index(f"order-{newer.number}")
    assert "5 d 23 h left" in body or "6 d 0 h left" in body  # newer: about 6 days of its 7
    assert (
        "h left" in body
        and "Dr. Ruth Okafor" in body
        and "Jane Doe" in body
        and "Medicine 1" in body
    )


def test_queue_query_count_does_not_grow_with_orders(client, pharmacist, django_assert_num_queries):
    review_order()
    client.force_login(pharmacist)
    client.get(reverse("prescriptions:review_queue"))  # warm the session
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        assert client.get(reverse("prescriptions:review_queue")).status_code == 200
    for _ in range(14):
        review_order(lines=3)
    with django_assert_num_queries(len(one.captured_queries)):
        response = client.get(reverse("prescriptions:review_queue"))
    assert response.content.decode().count('class="review-card"') == 15
    # 12, plus 2 for the messages link (issue 25): may this pharmacist answer messages (one query,
    # cached on the user) and how many patients wait (one COUNT, shown in the header and the queue).
    assert len(one.captured_queries) <= 14
    print(f"review queue: {len(one.captured_queries)} queries for 1 and for 15 orders")


def test_review_page_query_count_does_not_grow_with_lines(client, pharmacist):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(pharmacist)
    small, big = review_order(lines=1), review_order(lines=8)
    counts = []
    for order in (small, big):
        with CaptureQueriesContext(connection) as ctx:
            assert (
                client.get(reverse("prescriptions:review_order", args=[order.number])).status_code
                == 200
            )
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1]


# --- The audit record ----------------------------------------------------------------------


def test_reviews_cannot_be_edited_or_deleted(pharmacist):
    order = review_order()
    review = PrescriptionReview.objects.create(
        order=order, action=ReviewAction.INFORMATION_REQUESTED, by=pharmacist, note="Which clinic?"
    )
    review.note = "Something else"
    with pytest.raises(ValueError):
        review.save()
    with pytest.raises(ValueError):
        review.delete()
    with pytest.raises(ValueError):
        PrescriptionReview.objects.filter(pk=review.pk).update(note="x")
    with pytest.raises(ValueError):
        PrescriptionReview.objects.filter(pk=review.pk).delete()
    assert PrescriptionReview.objects.get(pk=review.pk).note == "Which clinic?"


def test_admin_offers_no_way_to_change_or_delete_reviews(pharmacist):
    model_admin = admin.site._registry[PrescriptionReview]
    request = RequestFactory().get("/")
    request.user = UserFactory(is_staff=True, is_superuser=True)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)
    assert not model_admin.has_add_permission(request)
    assert model_admin.has_view_permission(request)


def test_admin_review_list_opens(client):
    order = review_order()
    PrescriptionReview.objects.create(
        order=order, action=ReviewAction.INFORMATION_REQUESTED, note="Which clinic?"
    )
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    assert (
        client.get(reverse("admin:prescriptions_prescriptionreview_changelist")).status_code == 200
    )
    review = PrescriptionReview.objects.get()
    page = client.get(reverse("admin:prescriptions_prescriptionreview_change", args=[review.pk]))
    assert page.status_code == 200 and b"Which clinic?" in page.content
    assert (
        client.post(
            reverse("admin:prescriptions_prescriptionreview_delete", args=[review.pk]),
            {"post": "yes"},
        ).status_code
        == 403
    )
    assert PrescriptionReview.objects.filter(pk=review.pk).exists()


# --- Card holds: warning and lapse ---------------------------------------------------------


def test_pharmacists_are_warned_about_holds_expiring_within_a_day(db):
    soon = review_order(authorised_days_ago=6.5)
    later = review_order(authorised_days_ago=2)
    expiring_holds_digest_task()
    [email] = OutboundEmail.objects.filter(kind=EmailKind.STAFF_AUTHORISATIONS_EXPIRING)
    numbers = [hold["number"] for hold in email.context["entries"]]
    assert numbers == [str(soon.number)] and str(later.number) not in numbers
    # Run again the same day: no second email for the same order.
    expiring_holds_digest_task()
    assert OutboundEmail.objects.filter(kind=EmailKind.STAFF_AUTHORISATIONS_EXPIRING).count() == 1
    assert DigestEntry.objects.filter(order=soon).count() == 1


def test_lapsed_holds_are_canceled_and_the_customer_told(localstripe, baclofen_90):
    baclofen_90.stock = 5
    baclofen_90.save()
    lapsed = authorise(localstripe, place_rx(make_cart(tier=baclofen_90), tier=baclofen_90))
    fresh = authorise(localstripe, place_rx(make_cart(tier=baclofen_90), tier=baclofen_90))
    OrderEvent.objects.filter(order=lapsed, to_status=PaymentStatus.AUTHORIZED).update(
        created_at=timezone.now() - timedelta(days=7, minutes=5)
    )

    assert tasks.lapse_expired_prescription_holds() == 1

    lapsed.refresh_from_db()
    fresh.refresh_from_db()
    baclofen_90.refresh_from_db()
    assert (lapsed.status, lapsed.payment_status) == (OrderStatus.CANCELED, PaymentStatus.CANCELED)
    assert localstripe.payment_intent(lapsed.stripe_payment_intent_id)["status"] == "canceled"
    assert lapsed.events.filter(to_status=OrderStatus.CANCELED, note=rx.LAPSE_NOTE).exists()
    assert lapsed.reviews.get().action == ReviewAction.AUTHORISATION_EXPIRED
    [email] = OutboundEmail.objects.filter(order=lapsed, kind=EmailKind.PRESCRIPTION_REJECTED)
    assert "7 days" in email.context["reason"]
    assert fresh.status == OrderStatus.AWAITING_REVIEW
    from orders.services import order_link

    page = Client().get(order_link(lapsed)).content.decode()
    assert "card authorisation expired before review" in page and "nothing was charged" in page
    assert baclofen_90.stock == 4  # the lapsed order's pack is back
    assert tasks.lapse_expired_prescription_holds() == 0  # nothing left to do


def test_customer_page_says_the_review_state_in_plain_words(localstripe, baclofen_90, client):
    from orders.services import order_link

    pharmacist = make_pharmacist()
    order = authorise(localstripe, place_rx(make_cart(tier=baclofen_90), tier=baclofen_90))
    assert "Awaiting pharmacist review" in client.get(order_link(order)).content.decode()
    rx.prescription_request_information(
        order=order, by=pharmacist, message="Which clinic issued it?"
    )
    body = client.get(order_link(order)).content.decode()
    assert "More information requested:" in body and "Which clinic issued it?" in body
    rx.prescription_reject(
        order=order, by=pharmacist, reason="The prescription is for another patient."
    )
    body = client.get(order_link(order)).content.decode()
    assert "Not approved:" in body and "The prescription is for another patient." in body


def test_customer_page_shows_an_approval_with_changes(localstripe, baclofen_90, client):
    from orders.services import order_link

    order = authorise(
        localstripe, place_rx(make_cart(tier=baclofen_90, packages=2), tier=baclofen_90)
    )
    line = order.lines.get()
    rx.prescription_approve_with_changes(
        order=order,
        by=make_pharmacist(),
        approved_packages={line.pk: 1},
        note="Your prescription covers one pack.",
    )
    body = client.get(order_link(order)).content.decode()
    assert "Approved with changes:" in body and "Your prescription covers one pack." in body
    order.refresh_from_db()
    assert str(order.amount_captured) in body or str(order.total) in body
