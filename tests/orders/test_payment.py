"""Following the payment: authorisation, capture, decline, 3-D Secure, cancel, expiry, refunds."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone
from djmoney.money import Money

from cart.models import CartLine
from orders import services, tasks
from orders.models import Order, OrderEvent, OrderRefund
from orders.state import OrderStatus, PaymentStatus
from tests.localstripe import (
    CARD_3DS,
    CARD_DECLINED,
    CARD_OK,
    browser_authenticate,
    browser_confirm,
)
from tests.orders.conftest import make_cart, place

pytestmark = pytest.mark.django_db


def pay(localstripe, placed, card=CARD_OK) -> dict:
    return browser_confirm(
        base=localstripe.base, intent_id=placed.order.stripe_payment_intent_id, card_number=card
    )


def sync(order) -> Order:
    services.order_sync_payment(order_id=order.pk)
    order.refresh_from_db()
    return order


def test_prescription_order_is_authorised_and_waits_for_the_pharmacist(localstripe, baclofen_90):
    cart = make_cart(tier=baclofen_90)
    placed = place(cart)
    assert pay(localstripe, placed)["status"] == "requires_capture"
    order = sync(placed.order)
    assert (order.status, order.payment_status) == (
        OrderStatus.AWAITING_REVIEW,
        PaymentStatus.AUTHORIZED,
    )
    assert not CartLine.objects.filter(cart=cart).exists()  # emptied once authorised
    assert (
        localstripe.payment_intent(order.stripe_payment_intent_id)["status"] == "requires_capture"
    )


def test_general_sale_order_is_captured_at_once(localstripe, general_tier):
    cart = make_cart(tier=general_tier, packages=2)
    placed = place(cart)
    pay(localstripe, placed)
    order = sync(placed.order)
    assert (order.status, order.payment_status) == (
        OrderStatus.READY_TO_SHIP,
        PaymentStatus.CAPTURED,
    )
    assert order.amount_captured == order.total
    assert localstripe.payment_intent(order.stripe_payment_intent_id)["status"] == "succeeded"
    assert not CartLine.objects.filter(cart=cart).exists()


def test_syncing_twice_changes_nothing_the_second_time(localstripe, general_tier):
    placed = place(make_cart(tier=general_tier))
    pay(localstripe, placed)
    order = sync(placed.order)
    events = order.events.count()
    order = sync(order)
    order = sync(order)
    assert order.events.count() == events
    assert (order.status, order.payment_status) == (
        OrderStatus.READY_TO_SHIP,
        PaymentStatus.CAPTURED,
    )


def test_declined_card_marks_the_payment_failed_and_keeps_the_cart(localstripe, general_tier):
    general_tier.stock = 5
    general_tier.save()
    cart = make_cart(tier=general_tier)
    placed = place(cart)
    assert pay(localstripe, placed, CARD_DECLINED)["error"] == "Your card was declined."
    order = sync(placed.order)
    assert (order.status, order.payment_status) == (
        OrderStatus.PENDING_PAYMENT,
        PaymentStatus.FAILED,
    )
    assert order.payment_error == "Your card was declined."
    assert CartLine.objects.filter(cart=cart).exists()
    general_tier.refresh_from_db()
    assert general_tier.stock == 5  # a declined card holds nothing
    # Trying again from the same cart replaces the failed attempt; paying takes the stock.
    retry = place(cart)
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELED and retry.order.pk != order.pk
    pay(localstripe, retry)
    assert sync(retry.order).payment_status == PaymentStatus.CAPTURED
    general_tier.refresh_from_db()
    assert general_tier.stock == 4


def test_a_declined_attempt_not_yet_synced_is_replaced_by_the_next_submit(
    localstripe, general_tier, django_capture_on_commit_callbacks
):
    cart = make_cart(tier=general_tier)
    declined = place(cart)
    pay(localstripe, declined, CARD_DECLINED)  # the webhook has not arrived yet
    with django_capture_on_commit_callbacks(execute=True):
        retry = place(cart)
    first = Order.objects.get(pk=declined.order.pk)
    assert retry.order.pk != first.pk and retry.client_secret != declined.client_secret
    assert (first.status, first.payment_status) == (OrderStatus.CANCELED, PaymentStatus.CANCELED)
    assert localstripe.payment_intent(first.stripe_payment_intent_id)["status"] == "canceled"
    pay(localstripe, retry)
    assert sync(retry.order).payment_status == PaymentStatus.CAPTURED


def test_three_d_secure_card_needs_authentication_then_is_authorised(localstripe, baclofen_90):
    placed = place(make_cart(tier=baclofen_90))
    assert pay(localstripe, placed, CARD_3DS)["status"] == "requires_action"
    order = sync(placed.order)
    assert (order.status, order.payment_status) == (
        OrderStatus.PENDING_PAYMENT,
        PaymentStatus.PENDING,
    )
    result = browser_authenticate(
        base=localstripe.base,
        intent_id=order.stripe_payment_intent_id,
        client_secret=placed.client_secret,
    )
    assert result["status"] == "requires_capture"
    order = sync(order)
    assert (order.status, order.payment_status) == (
        OrderStatus.AWAITING_REVIEW,
        PaymentStatus.AUTHORIZED,
    )


def test_failed_three_d_secure_is_a_failed_payment(localstripe, general_tier):
    placed = place(make_cart(tier=general_tier))
    pay(localstripe, placed, CARD_3DS)
    browser_authenticate(
        base=localstripe.base,
        intent_id=placed.order.stripe_payment_intent_id,
        client_secret=placed.client_secret,
        success=False,
    )
    order = sync(placed.order)
    assert order.payment_status == PaymentStatus.FAILED
    assert "authentication" in order.payment_error


def test_pharmacist_capture_is_idempotent_and_moves_the_order_on(
    localstripe, baclofen_90, django_user_model
):
    pharmacist = django_user_model.objects.create_user(
        email="rph@example.com", password="x", is_staff=True
    )
    pharmacist.user_permissions.add(Permission.objects.get(codename="capture_payment"))
    placed = place(make_cart(tier=baclofen_90))
    pay(localstripe, placed)
    order = sync(placed.order)
    order = services.order_capture_payment(order=order, by=pharmacist)
    again = services.order_capture_payment(order=order, by=pharmacist)
    assert (again.status, again.payment_status) == (
        OrderStatus.READY_TO_SHIP,
        PaymentStatus.CAPTURED,
    )
    assert order.events.filter(to_status=PaymentStatus.CAPTURED).count() == 1
    assert order.events.get(to_status=OrderStatus.READY_TO_SHIP).by == pharmacist
    assert localstripe.payment_intent(order.stripe_payment_intent_id)["status"] == "succeeded"


def test_cancel_releases_the_hold_and_the_stock(localstripe, baclofen_90):
    baclofen_90.stock = 2
    baclofen_90.save()
    placed = place(make_cart(tier=baclofen_90))
    pay(localstripe, placed)
    order = sync(placed.order)
    baclofen_90.refresh_from_db()
    assert baclofen_90.stock == 1
    services.order_cancel(order=order, by=None, reason="Prescription could not be verified.")
    services.order_cancel(order=order, by=None, reason="twice")  # no-op
    order.refresh_from_db()
    baclofen_90.refresh_from_db()
    assert (order.status, order.payment_status) == (OrderStatus.CANCELED, PaymentStatus.CANCELED)
    assert baclofen_90.stock == 2
    assert localstripe.payment_intent(order.stripe_payment_intent_id)["status"] == "canceled"
    assert (
        order.events.filter(
            kind=OrderEvent.Kind.STOCK, note__startswith="Reserved stock returned"
        ).count()
        == 1
    )
    # Stripe reporting the cancel later (webhook, reconciliation) changes nothing more.
    assert sync(order).events.count() == order.events.count()


def test_shipped_orders_cannot_be_canceled(localstripe, general_tier):
    placed = place(make_cart(tier=general_tier))
    pay(localstripe, placed)
    order = sync(placed.order)
    services.order_transition(order=order, to=OrderStatus.SHIPPED)
    with pytest.raises(services.OrderError, match="already shipped"):
        services.order_cancel(order=order, by=None, reason="late")


def test_reconciliation_catches_up_on_a_lost_webhook(localstripe, general_tier, baclofen_90):
    paid = place(make_cart(tier=general_tier))
    unpaid = place(make_cart(tier=baclofen_90))
    pay(localstripe, paid)
    Order.objects.update(created_at=timezone.now() - timedelta(minutes=5))
    assert tasks.reconcile_pending_payments() == 1
    paid_order, unpaid_order = sync(paid.order), Order.objects.get(pk=unpaid.order.pk)
    assert paid_order.status == OrderStatus.READY_TO_SHIP
    assert unpaid_order.status == OrderStatus.PENDING_PAYMENT
    assert tasks.reconcile_pending_payments() == 0


def test_unpaid_orders_expire_and_close_their_payment(
    localstripe, general_tier, baclofen_90, settings
):
    settings.ORDER_UNPAID_EXPIRY_MINUTES = 60
    general_tier.stock = 3
    general_tier.save()
    stale = place(make_cart(tier=general_tier, packages=2)).order
    paid_late = place(make_cart(tier=baclofen_90))
    fresh = place(make_cart(tier=general_tier)).order
    general_tier.refresh_from_db()
    assert general_tier.stock == 3  # unpaid orders hold no stock
    pay(localstripe, paid_late)  # paid, but the webhook never came
    Order.objects.filter(pk__in=[stale.pk, paid_late.order.pk]).update(
        created_at=timezone.now() - timedelta(minutes=61)
    )
    assert tasks.expire_unpaid_orders() == 1
    stale.refresh_from_db()
    fresh.refresh_from_db()
    general_tier.refresh_from_db()
    assert (stale.status, stale.payment_status) == (OrderStatus.CANCELED, PaymentStatus.CANCELED)
    assert (
        localstripe.payment_intent(stale.stripe_payment_intent_id)["status"] == "canceled"
    )  # an old tab cannot pay it
    assert general_tier.stock == 3
    assert fresh.status == OrderStatus.PENDING_PAYMENT
    assert Order.objects.get(pk=paid_late.order.pk).status == OrderStatus.AWAITING_REVIEW


def test_a_payment_intent_stripe_forgot_is_expired_by_reconciliation(localstripe, general_tier):
    """After a key or account change Stripe answers resource_missing: the order is expired, not kept."""
    general_tier.stock = 1
    general_tier.save()
    placed = place(make_cart(tier=general_tier))
    Order.objects.filter(pk=placed.order.pk).update(
        stripe_payment_intent_id="pi_unknownToThisAccount",
        created_at=timezone.now() - timedelta(minutes=5),
    )
    assert tasks.reconcile_pending_payments() == 1
    order = Order.objects.get(pk=placed.order.pk)
    assert (order.status, order.payment_status) == (OrderStatus.CANCELED, PaymentStatus.CANCELED)
    assert order.events.filter(note=services.FORGOTTEN_INTENT_REASON).exists()
    assert tasks.reconcile_pending_payments() == 0
    # The pack is there for the next customer.
    buyer = place(make_cart(tier=general_tier))
    pay(localstripe, buyer)
    assert sync(buyer.order).payment_status == PaymentStatus.CAPTURED
    general_tier.refresh_from_db()
    assert general_tier.stock == 0


def test_partial_then_full_refund(localstripe, general_tier, django_user_model):
    staff = django_user_model.objects.create_user(
        email="staff@example.com", password="x", is_staff=True
    )
    staff.user_permissions.add(Permission.objects.get(codename="refund_order"))
    placed = place(make_cart(tier=general_tier, packages=3))  # 36.00 + 9.95
    pay(localstripe, placed)
    order = sync(placed.order)
    assert order.total == Money("45.95", "USD")
    with pytest.raises(services.OrderError, match="reason"):
        services.order_refund(order=order, amount=Money("5", "USD"), reason=" ", by=staff)
    with pytest.raises(services.OrderError, match="between"):
        services.order_refund(
            order=order, amount=Money("45.96", "USD"), reason="too much", by=staff
        )

    order = services.order_refund(
        order=order, amount=Money("12.00", "USD"), reason="One pack damaged", by=staff
    )
    assert order.payment_status == PaymentStatus.PARTIALLY_REFUNDED
    assert order.amount_refunded == Money("12.00", "USD")
    order = services.order_refund(
        order=order, amount=None, reason="Customer returned the rest", by=staff
    )
    assert order.payment_status == PaymentStatus.REFUNDED
    assert order.amount_refunded == order.total
    assert list(OrderRefund.objects.filter(order=order).values_list("amount", flat=True)) == [
        Money("12.00", "USD").amount,
        Money("33.95", "USD").amount,
    ]
    assert order.events.filter(
        kind=OrderEvent.Kind.PAYMENT, to_status=PaymentStatus.REFUNDED, by=staff
    ).exists()
    with pytest.raises(services.OrderError):
        services.order_refund(order=order, amount=Money("1", "USD"), reason="again", by=staff)
    # Stripe's view agrees; a later sync (charge.refunded) adds nothing.
    assert sync(order).amount_refunded == order.total


def test_stock_is_given_back_exactly_as_taken(localstripe, general_tier, baclofen_90):
    """Staff start tracking a tier while an order is open: canceling it must not invent stock."""
    general_tier.stock = 5
    general_tier.save()
    cart = make_cart(tier=general_tier, packages=2)
    CartLine.objects.create(
        cart=cart, tier=baclofen_90, packages=1, price_when_added=baclofen_90.price
    )
    order = place(cart).order
    baclofen_90.stock = 10  # tracked only from now on
    baclofen_90.save()
    services.order_cancel(order=order, by=None, reason="changed mind")
    general_tier.refresh_from_db()
    baclofen_90.refresh_from_db()
    assert (general_tier.stock, baclofen_90.stock) == (5, 10)
