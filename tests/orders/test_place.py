"""Placing an order: re-priced from the catalog, stock taken once, nothing medical sent to Stripe."""
import json
from decimal import Decimal

import pytest
import stripe
from django.urls import reverse
from djmoney.money import Money

from cart.models import CartLine
from catalog.models import LegalClass
from orders import services
from orders.models import Order, OrderEvent
from orders.state import OrderStatus, PaymentStatus
from tests.orders.conftest import ADDRESS, make_cart, place

pytestmark = pytest.mark.django_db


def test_order_snapshots_lines_and_a_later_price_change_does_not_alter_it(localstripe, baclofen_90):
    cart = make_cart(tier=baclofen_90, packages=2)
    placed = place(cart)
    order = placed.order
    line = order.lines.get()
    assert (line.product_name, line.strength, line.pack_size, line.packages) == ("Baclofen", "10mg", 90, 2)
    assert line.unit_price == Money("68.23", "USD")
    assert line.line_total == Money("136.46", "USD")
    assert line.per_pill == Money("0.76", "USD")
    assert line.requires_prescription is True
    assert order.subtotal == Money("136.46", "USD")
    assert order.shipping == Money("9.95", "USD")  # under the free-shipping threshold
    assert order.total == Money("146.41", "USD")
    assert (order.status, order.payment_status) == (OrderStatus.PENDING_PAYMENT, PaymentStatus.PENDING)
    assert order.has_prescription_items

    baclofen_90.price = Money("99.99", "USD")
    baclofen_90.save()
    baclofen_90.dosage.product.name = "Baclofen (renamed)"
    baclofen_90.dosage.product.save()
    line.refresh_from_db()
    order.refresh_from_db()
    assert (line.product_name, line.unit_price, order.total) == ("Baclofen", Money("68.23", "USD"), Money("146.41", "USD"))
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
        reverse("orders:checkout"),
        {
            "email": "alex@example.com", "name": "Alex Morgan", "line1": "1 Main St", "city": "Albany",
            "state": "NY", "zip_code": "12207", "shipping_method": "standard",
            "total": "0.01", "amount": "1", "price": "0.01", "subtotal": "0.01", "unit_price": "0.01",
        },
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 200, response.content
    data = response.json()
    order = Order.objects.get(number=data["order_number"])
    assert order.total == Money("33.95", "USD")  # 2 × 12.00 + 9.95, from the catalog
    assert localstripe.payment_intent(order.stripe_payment_intent_id)["amount"] == 3395
    assert data["client_secret"].startswith(order.stripe_payment_intent_id)
    assert data["return_url"].endswith(services.order_link(order))


def test_checkout_refuses_states_the_pharmacy_is_not_licensed_for(client, general_tier, settings):
    settings.PHARMACY_LICENSED_STATES = ["NY"]
    cart = make_cart(tier=general_tier)
    session = client.session
    session["cart_id"] = cart.pk
    session.save()
    cart.session_key = session.session_key
    cart.save()
    response = client.post(
        reverse("orders:checkout"),
        {"email": "a@example.com", "name": "A", "line1": "1 St", "city": "Austin", "state": "TX",
         "zip_code": "123", "shipping_method": "standard"},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert "not licensed to ship medicines to Texas" in errors["state"][0]["message"]
    assert "zip_code" in errors
    assert not Order.objects.exists()


def test_refuses_a_cart_that_cannot_check_out_and_writes_nothing(localstripe, general_tier, settings):
    settings.CART_MAX_PACKAGES_PER_LINE = 3
    cart = make_cart(tier=general_tier, packages=5)
    with pytest.raises(services.OrderError, match="at most 3 packages"):
        place(cart)
    assert not Order.objects.exists()


def test_a_prescription_cart_is_refused_without_patient_and_prescription_details(localstripe, baclofen_90):
    cart = make_cart(tier=baclofen_90)
    with pytest.raises(services.OrderError, match="patient's details and a prescription"):
        services.order_place(
            cart=cart, email="alex@example.com", address=ADDRESS, shipping_method="standard", prescription=None
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


def test_tracked_stock_is_reserved_and_an_oversell_is_refused(localstripe, general_tier):
    general_tier.stock = 3
    general_tier.save()
    place(make_cart(tier=general_tier, packages=2))
    general_tier.refresh_from_db()
    assert general_tier.stock == 1
    with pytest.raises(services.OrderError):
        place(make_cart(tier=general_tier, packages=2))
    general_tier.refresh_from_db()
    assert general_tier.stock == 1
    assert Order.objects.count() == 1


def test_when_stripe_is_down_the_order_is_canceled_cleanly_and_the_cart_kept(localstripe, general_tier, settings):
    general_tier.stock = 5
    general_tier.save()
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing listens there
    cart = make_cart(tier=general_tier, packages=2)
    with pytest.raises(services.OrderError, match="payment provider could not be reached"):
        place(cart)
    order = Order.objects.get()
    assert (order.status, order.payment_status, order.stripe_payment_intent_id) == ("canceled", "canceled", None)
    general_tier.refresh_from_db()
    assert general_tier.stock == 5  # given back
    assert CartLine.objects.filter(cart=cart).exists()
    assert order.events.filter(kind=OrderEvent.Kind.STOCK).exists()
    # Stripe is back: the customer simply tries again.
    settings.STRIPE_API_BASE = localstripe.base
    again = place(cart).order
    assert again.stripe_payment_intent_id and again.number != order.number


def test_a_new_attempt_from_the_same_cart_replaces_the_unpaid_one(localstripe, general_tier):
    general_tier.stock = 4
    general_tier.save()
    cart = make_cart(tier=general_tier, packages=2)
    first = place(cart).order
    second = place(cart).order
    first.refresh_from_db()
    general_tier.refresh_from_db()
    assert first.status == OrderStatus.CANCELED and second.status == OrderStatus.PENDING_PAYMENT
    assert general_tier.stock == 2  # held once, not twice
    assert localstripe.payment_intent(first.stripe_payment_intent_id)["status"] == "canceled"


def test_amounts_sent_to_stripe_are_in_cents():
    assert services.to_minor(Money(Decimal("78.18"), "USD")) == 7818
    assert services.to_minor(Money(Decimal("0.10"), "USD")) == 10
    assert services.from_minor(7818) == Money("78.18", "USD")
