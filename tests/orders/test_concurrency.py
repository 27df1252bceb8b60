"""Checkouts at the same moment, on PostgreSQL with real threads and row locks.

Stock is taken when the card is authorised: the last pack goes to one customer only, a double
submit makes one order, and unpaid checkouts cannot keep a pack from a paying customer.
"""

import threading
import uuid

import pytest
from django.db import connection, connections

from cart.models import Cart, CartLine
from orders import services
from orders.models import Order
from orders.state import OrderStatus, PaymentStatus
from tests.localstripe import CARD_OK, browser_confirm
from tests.orders.conftest import make_cart, place

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row locks need PostgreSQL"
)


def run_together(target, args_list) -> list:
    """Run ``target`` once per args in its own thread (own connection), released at once."""
    barrier = threading.Barrier(len(args_list))
    results: list = []

    def run(*args):
        try:
            barrier.wait(timeout=10)
            results.append(target(*args))
        except Exception as exc:  # noqa: BLE001 - collected and asserted on by the test
            results.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=args) for args in args_list]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def confirm_card(localstripe, placed) -> None:
    browser_confirm(
        base=localstripe.base, intent_id=placed.order.stripe_payment_intent_id, card_number=CARD_OK
    )


def test_two_customers_authorise_the_last_pack_at_once_and_one_wins(
    transactional_db, localstripe, general_tier
):
    general_tier.stock = 1
    general_tier.save()
    placed = [place(make_cart(tier=general_tier)), place(make_cart(tier=general_tier))]
    for attempt in placed:
        confirm_card(localstripe, attempt)  # both cards are authorised at Stripe

    run_together(
        lambda order_id: services.order_sync_payment(order_id=order_id),
        [(p.order.pk,) for p in placed],
    )

    orders = [Order.objects.get(pk=p.order.pk) for p in placed]
    winners = [o for o in orders if o.status == OrderStatus.READY_TO_SHIP]
    losers = [o for o in orders if o.status == OrderStatus.CANCELED]
    assert len(winners) == 1 and len(losers) == 1, [(o.status, o.payment_status) for o in orders]
    assert winners[0].payment_status == PaymentStatus.CAPTURED
    assert losers[0].payment_status == PaymentStatus.CANCELED  # hold released after commit
    assert localstripe.payment_intent(losers[0].stripe_payment_intent_id)["status"] == "canceled"
    assert losers[0].events.filter(note=services.SOLD_OUT_NOTE).exists()
    general_tier.refresh_from_db()
    assert general_tier.stock == 0


def test_four_simultaneous_submits_of_one_cart_make_one_order_and_one_payment_intent(
    transactional_db, localstripe, general_tier
):
    cart = make_cart(tier=general_tier, packages=2)
    results = run_together(lambda: place(cart), [()] * 4)
    assert all(isinstance(r, services.PlacedOrder) for r in results), results
    assert len({r.order.pk for r in results}) == 1
    assert len({r.client_secret for r in results}) == 1
    order = Order.objects.get()
    assert order.status == OrderStatus.PENDING_PAYMENT
    assert results[0].client_secret.startswith(order.stripe_payment_intent_id)


def test_ten_unpaid_checkouts_do_not_keep_the_pack_from_a_paying_customer(
    transactional_db, localstripe, general_tier
):
    general_tier.stock = 1
    general_tier.save()

    def unpaid_checkout():
        cart = Cart.objects.create(session_key=uuid.uuid4().hex)  # ten separate visitors
        CartLine.objects.create(
            cart=cart, tier=general_tier, packages=1, price_when_added=general_tier.price
        )
        return place(cart)

    results = run_together(unpaid_checkout, [()] * 10)
    assert all(isinstance(r, services.PlacedOrder) for r in results), results
    general_tier.refresh_from_db()
    assert general_tier.stock == 1  # none of them holds the pack

    buyer = place(make_cart(tier=general_tier))
    confirm_card(localstripe, buyer)
    order = services.order_sync_payment(order_id=buyer.order.pk)
    assert (order.status, order.payment_status) == (
        OrderStatus.READY_TO_SHIP,
        PaymentStatus.CAPTURED,
    )
    general_tier.refresh_from_db()
    assert general_tier.stock == 0
