"""Staff see orders in the admin and refund through Stripe; history cannot be edited."""

import pytest
from django.urls import reverse
from djmoney.money import Money

from orders import services
from orders.models import OrderEvent, OrderRefund
from orders.state import PaymentStatus
from tests.factories import UserFactory
from tests.localstripe import CARD_OK, browser_confirm
from tests.orders.conftest import make_cart, place

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_superuser(email="admin@example.com", password="x")
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def paid_order(localstripe, general_tier):
    order = place(make_cart(tier=general_tier, packages=2)).order  # 24.00 + 9.95
    browser_confirm(
        base=localstripe.base, intent_id=order.stripe_payment_intent_id, card_number=CARD_OK
    )
    return services.order_sync_payment(order_id=order.pk)


def test_order_list_shows_the_columns_staff_need(
    staff_client, paid_order, django_assert_max_num_queries
):
    with django_assert_max_num_queries(12):
        response = staff_client.get(reverse("admin:orders_order_changelist"))
    html = response.content.decode()
    assert response.status_code == 200
    for text in (str(paid_order.number), paid_order.email, "Being prepared for shipping", "$33.95"):
        assert text.lower() in html.lower()


def test_order_list_queries_do_not_grow_with_orders(
    staff_client, localstripe, general_tier, django_assert_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    place(make_cart(tier=general_tier))
    url = reverse("admin:orders_order_changelist")
    with CaptureQueriesContext(connection) as one:
        staff_client.get(url)
    for _ in range(
        8
    ):  # guests and a signed-in customer: the user column is joined, not fetched per row
        place(make_cart(tier=general_tier))
        customer = UserFactory()
        place(make_cart(tier=general_tier, user=customer), user=customer)
    with django_assert_num_queries(len(one.captured_queries)):
        response = staff_client.get(url)
    assert response.content.decode().count('class="field-number"') == 17


def test_partial_refund_from_the_admin_page(staff_client, paid_order, localstripe):
    url = reverse("admin:orders_order_refund", args=[paid_order.pk])
    change = staff_client.get(
        reverse("admin:orders_order_change", args=[paid_order.pk])
    ).content.decode()
    assert url in change and "Loratadine" in change  # the refund button and the read-only lines

    response = staff_client.post(url, {"amount": "40.00", "reason": "too much"})
    assert response.status_code == 200 and "Refund between" in response.content.decode()
    response = staff_client.post(url, {"amount": "", "reason": "x"})
    assert response.status_code == 200

    response = staff_client.post(url, {"amount": "10.00", "reason": "Parcel arrived damaged"})
    assert response.status_code == 302
    paid_order.refresh_from_db()
    assert paid_order.payment_status == PaymentStatus.PARTIALLY_REFUNDED
    assert paid_order.amount_refunded == Money("10.00", "USD")
    refund = OrderRefund.objects.get()
    assert (refund.reason, refund.by) == ("Parcel arrived damaged", staff_client.user)
    event = paid_order.events.get(to_status=PaymentStatus.PARTIALLY_REFUNDED)
    assert event.by == staff_client.user and "Parcel arrived damaged" in event.note
    # The reason stays in the shop: Stripe's refund carries only the order id.
    import stripe

    stripe.api_base, stripe.api_key = localstripe.base, "sk_test_x"
    stored = stripe.Refund.retrieve(refund.stripe_refund_id).to_dict()
    assert stored["metadata"] == {"order_id": str(paid_order.id)} and "damaged" not in str(stored)


def test_full_refund_action(staff_client, paid_order):
    response = staff_client.post(
        reverse("admin:orders_order_changelist"),
        {"action": "refund_in_full", "_selected_action": [str(paid_order.pk)]},
    )
    assert response.status_code == 302
    paid_order.refresh_from_db()
    assert paid_order.payment_status == PaymentStatus.REFUNDED
    assert paid_order.amount_refunded == paid_order.total


def test_orders_and_events_cannot_be_deleted_or_edited_in_the_admin(staff_client, paid_order):
    assert (
        staff_client.get(reverse("admin:orders_order_delete", args=[paid_order.pk])).status_code
        == 403
    )
    assert staff_client.get(reverse("admin:orders_order_add")).status_code == 403
    html = staff_client.get(
        reverse("admin:orders_order_change", args=[paid_order.pk])
    ).content.decode()
    assert 'name="events-0-note"' not in html and 'name="status"' not in html
    assert OrderEvent.objects.filter(order=paid_order).count() >= 3


def test_a_captured_order_offers_its_refund_page_and_a_pending_one_does_not(
    staff_client, paid_order, general_tier
):
    refund_url = reverse("admin:orders_order_refund", args=[paid_order.pk])
    page = staff_client.get(reverse("admin:orders_order_change", args=[paid_order.pk]))
    assert f'<a class="button" href="{refund_url}">Refund…</a>' in page.content.decode()

    pending = place(make_cart(tier=general_tier)).order
    page = staff_client.get(reverse("admin:orders_order_change", args=[pending.pk]))
    html = page.content.decode()
    assert "Nothing to refund." in html
    assert "Refund…</a>" not in html
