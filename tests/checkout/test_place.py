"""Placing an order: re-priced from the catalog, stock taken once, nothing medical sent to Stripe."""

import json
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import stripe
from django.urls import reverse
from djmoney.money import Money

from cart.models import CartLine
from catalog.models import LegalClass
from checkout.placement import order_place
from orders import services
from orders.models import Order
from orders.state import OrderStatus, PaymentStatus
from tests.localstripe import CARD_OK, browser_confirm
from tests.orders.conftest import ADDRESS, make_cart, place, shown_figures

pytestmark = pytest.mark.django_db


def test_order_snapshots_lines_and_a_later_price_change_does_not_alter_it(localstripe, baclofen_90):
    cart = make_cart(tier=baclofen_90, packages=2)
    placed = place(cart)
    order = placed.order
    line = order.lines.get()
    assert (line.product_name, line.strength, line.pack_size, line.packages) == (
        "Baclofen",
        "10mg",
        90,
        2,
    )
    assert line.unit_price == Money("68.23", "USD")
    assert line.line_total == Money("136.46", "USD")
    assert line.per_pill == Money("0.76", "USD")
    assert line.requires_prescription is True
    assert order.subtotal == Money("136.46", "USD")
    assert order.shipping == Money("9.95", "USD")  # under the free-shipping threshold
    assert order.total == Money("146.41", "USD")
    assert (order.status, order.payment_status) == (
        OrderStatus.PENDING_PAYMENT,
        PaymentStatus.PENDING,
    )
    assert order.has_prescription_items

    baclofen_90.price = Money("99.99", "USD")
    baclofen_90.save()
    baclofen_90.dosage.product.name = "Baclofen (renamed)"
    baclofen_90.dosage.product.save()
    line.refresh_from_db()
    order.refresh_from_db()
    assert (line.product_name, line.unit_price, order.total) == (
        "Baclofen",
        Money("68.23", "USD"),
        Money("146.41", "USD"),
    )
    # The PaymentIntent holds exactly the order total, in cents.
    assert localstripe.payment_intent(order.stripe_payment_intent_id)["amount"] == 14641
    # The cart is kept until the payment is authorised.
    assert CartLine.objects.filter(cart=cart).count() == 1


def test_express_shipping_adds_fifteen_dollars(localstripe, general_tier):
    order = place(make_cart(tier=general_tier), method="express").order
    assert order.shipping == Money("24.95", "USD")
    assert order.total == Money("36.95", "USD")


def test_nothing_sent_to_stripe_names_a_medicine(localstripe, baclofen_90, monkeypatch):
    sent = []
    real_create = stripe.PaymentIntent.create

    def spy(**params):
        sent.append(params)
        return real_create(**params)

    monkeypatch.setattr(stripe.PaymentIntent, "create", spy)
    order = place(make_cart(tier=baclofen_90)).order
    assert len(sent) == 1
    params = sent[0]
    assert set(params["metadata"]) == {"order_id", "order_number"}
    assert params["metadata"] == {"order_id": str(order.id), "order_number": str(order.number)}
    assert params["capture_method"] == "manual"
    assert params["idempotency_key"] == f"order-{order.id}-pi"
    assert "description" not in params and "statement_descriptor" not in params
    flat = json.dumps(params, default=str).lower()
    for word in ("baclofen", "10mg", "spasticity", "muscle"):
        assert word not in flat
    stored = localstripe.payment_intent(order.stripe_payment_intent_id)
    assert set(stored["metadata"]) == {"order_id", "order_number"}
    assert not stored.get("description")
    assert "baclofen" not in json.dumps(stored).lower()


def test_checkout_ignores_posted_totals_and_prices(localstripe, client, general_tier):
    cart = make_cart(tier=general_tier, packages=2)
    session = client.session
    session["cart_id"] = cart.pk
    session.save()
    cart.session_key = session.session_key
    cart.save()
    response = client.post(
        reverse("checkout:checkout"),
        {
            "email": "alex@example.com",
            "name": "Alex Morgan",
            "line1": "1 Main St",
            "city": "Albany",
            "state": "NY",
            "zip_code": "12207",
            "shipping_method": "standard",
            "total": "0.01",
            "amount": "1",
            "price": "0.01",
            "subtotal": "0.01",
            "unit_price": "0.01",
            "figures": shown_figures(client),
        },
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 200, response.content
    data = response.json()
    order = Order.objects.get(number=data["order_number"])
    assert order.total == Money("33.95", "USD")  # 2 × 12.00 + 9.95, from the catalog
    assert localstripe.payment_intent(order.stripe_payment_intent_id)["amount"] == 3395
    assert data["client_secret"].startswith(order.stripe_payment_intent_id)
    # Stripe sends the customer back to the order page with a valid signed link (the link carries
    # a timestamp, so it is compared by what it opens, not character for character).
    return_url = urlsplit(data["return_url"])
    assert return_url.path == reverse("orders:detail", kwargs={"number": order.number})
    assert services.order_token_is_valid(order=order, token=parse_qs(return_url.query)["t"][0])


def test_checkout_refuses_states_the_pharmacy_is_not_licensed_for(client, general_tier, settings):
    settings.PHARMACY_LICENSED_STATES = ["NY"]
    cart = make_cart(tier=general_tier)
    session = client.session
    session["cart_id"] = cart.pk
    session.save()
    cart.session_key = session.session_key
    cart.save()
    response = client.post(
        reverse("checkout:checkout"),
        {
            "email": "a@example.com",
            "name": "A",
            "line1": "1 St",
            "city": "Austin",
            "state": "TX",
            "zip_code": "123",
            "shipping_method": "standard",
        },
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert "not licensed to ship medicines to Texas" in errors["state"][0]["message"]
    assert "zip_code" in errors
    assert not Order.objects.exists()


def test_refuses_a_cart_that_cannot_check_out_and_writes_nothing(
    localstripe, general_tier, settings
):
    settings.CART_MAX_PACKAGES_PER_LINE = 3
    cart = make_cart(tier=general_tier, packages=5)
    with pytest.raises(services.OrderError, match="at most 3 packages"):
        place(cart)
    assert not Order.objects.exists()


def test_a_prescription_cart_is_refused_without_patient_and_prescription_details(
    localstripe, baclofen_90
):
    cart = make_cart(tier=baclofen_90)
    with pytest.raises(services.OrderError, match="patient's details and a prescription"):
        order_place(
            cart=cart,
            email="alex@example.com",
            address=ADDRESS,
            shipping_method="standard",
            prescription=None,
        )
    assert not Order.objects.exists()
    assert CartLine.objects.filter(cart=cart).count() == 1


def test_controlled_substances_never_reach_an_order(localstripe, general_tier):
    product = general_tier.dosage.product
    product.legal_class = LegalClass.CONTROLLED
    product.save()
    with pytest.raises(services.OrderError, match="not available for online order"):
        place(make_cart(tier=general_tier))
    assert not Order.objects.exists()


def _pay_and_sync(localstripe, placed) -> Order:
    browser_confirm(
        base=localstripe.base, intent_id=placed.order.stripe_payment_intent_id, card_number=CARD_OK
    )
    return services.order_sync_payment(order_id=placed.order.pk)


def test_tracked_stock_is_taken_at_authorisation_and_never_oversold(
    localstripe, client, general_tier, django_capture_on_commit_callbacks
):
    general_tier.stock = 3
    general_tier.save()
    with pytest.raises(services.OrderError, match="only 3 in stock"):
        place(make_cart(tier=general_tier, packages=4))
    first = place(make_cart(tier=general_tier, packages=2))
    second = place(make_cart(tier=general_tier, packages=2))  # unpaid checkouts take nothing
    general_tier.refresh_from_db()
    assert general_tier.stock == 3
    assert _pay_and_sync(localstripe, first).payment_status == PaymentStatus.CAPTURED
    general_tier.refresh_from_db()
    assert general_tier.stock == 1
    # The second card is authorised too, but only one pack is left: that order is canceled,
    # its hold released, nothing oversold.
    with django_capture_on_commit_callbacks(execute=True):
        _pay_and_sync(localstripe, second)
    lost = Order.objects.get(pk=second.order.pk)
    assert (lost.status, lost.payment_status) == (OrderStatus.CANCELED, PaymentStatus.CANCELED)
    assert localstripe.payment_intent(lost.stripe_payment_intent_id)["status"] == "canceled"
    general_tier.refresh_from_db()
    assert general_tier.stock == 1
    assert CartLine.objects.filter(cart=second.order.cart).exists()  # the loser keeps their cart
    page = client.get(services.order_link(lost)).content.decode()
    assert "the last packs sold out while your payment was being confirmed" in page


def test_when_stripe_is_down_the_order_is_canceled_cleanly_and_the_cart_kept(
    localstripe, general_tier, settings
):
    general_tier.stock = 5
    general_tier.save()
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing listens there
    cart = make_cart(tier=general_tier, packages=2)
    with pytest.raises(services.OrderError, match="payment provider could not be reached"):
        place(cart)
    order = Order.objects.get()
    assert (order.status, order.payment_status, order.stripe_payment_intent_id) == (
        "canceled",
        "canceled",
        None,
    )
    general_tier.refresh_from_db()
    assert general_tier.stock == 5  # never taken
    assert CartLine.objects.filter(cart=cart).exists()
    # Stripe is back: the customer simply tries again.
    settings.STRIPE_API_BASE = localstripe.base
    again = place(cart).order
    assert again.stripe_payment_intent_id and again.number != order.number


def test_a_repeated_submit_returns_the_same_order_and_a_changed_cart_replaces_it(
    localstripe, general_tier, django_capture_on_commit_callbacks
):
    cart = make_cart(tier=general_tier, packages=2)
    first = place(cart)
    repeat = place(cart)
    assert (repeat.order.pk, repeat.client_secret) == (first.order.pk, first.client_secret)
    assert Order.objects.count() == 1

    CartLine.objects.filter(cart=cart).update(packages=3)
    with django_capture_on_commit_callbacks(
        execute=True
    ):  # the old attempt's hold is released after commit
        changed = place(cart)
    first.order.refresh_from_db()
    assert (
        changed.order.pk != first.order.pk and changed.order.status == OrderStatus.PENDING_PAYMENT
    )
    assert (first.order.status, first.order.payment_status) == (
        OrderStatus.CANCELED,
        PaymentStatus.CANCELED,
    )
    assert localstripe.payment_intent(first.order.stripe_payment_intent_id)["status"] == "canceled"
    assert list(Order.objects.awaiting_payment().values_list("pk", flat=True)) == [changed.order.pk]


def test_a_restart_between_the_order_and_its_payment_leaves_nothing_held(
    localstripe, general_tier, monkeypatch
):
    """The web worker dies after the order is written and before Stripe is asked: the order
    holds no stock, and the customer's next try carries on with it."""
    general_tier.stock = 1
    general_tier.save()
    cart = make_cart(tier=general_tier)

    class WorkerKilled(BaseException):
        pass

    def killed(**kwargs):
        raise WorkerKilled

    monkeypatch.setattr(services.gateway, "create_payment_intent", killed)
    with pytest.raises(WorkerKilled):
        place(cart)
    monkeypatch.undo()
    stranded = Order.objects.get()
    assert (stranded.status, stranded.stripe_payment_intent_id) == (
        OrderStatus.PENDING_PAYMENT,
        None,
    )
    general_tier.refresh_from_db()
    assert general_tier.stock == 1  # nothing held by the stranded order
    # Another customer can buy the pack meanwhile? Yes; here the same customer simply retries.
    retry = place(cart)
    assert retry.order.pk == stranded.pk and retry.client_secret
    order = _pay_and_sync(localstripe, retry)
    assert order.payment_status == PaymentStatus.CAPTURED
    general_tier.refresh_from_db()
    assert general_tier.stock == 0


def test_amounts_sent_to_stripe_are_in_cents():
    assert services.to_minor(Money(Decimal("78.18"), "USD")) == 7818
    assert services.to_minor(Money(Decimal("0.10"), "USD")) == 10
    assert services.from_minor(7818) == Money("78.18", "USD")
