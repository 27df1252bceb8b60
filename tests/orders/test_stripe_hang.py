"""Stripe accepts the connection and never answers.

A real TCP server stands in for a hung Stripe (STRIPE_API_BASE points at it). Checkout must answer
within STRIPE_TIMEOUT_SECONDS × (1 + STRIPE_MAX_NETWORK_RETRIES) plus the library's back-off, keep
the cart and leave nothing holding stock; meanwhile the catalog, the cart and the order page answer
(the order page hands its payment check to the worker instead of asking Stripe itself).
"""

import contextlib
import threading
import time

import pytest
import requests
from django.db import connections
from django.test import Client
from django.urls import reverse

from cart.models import CartLine
from orders import services
from orders.models import Order
from orders.state import OrderStatus
from pharmacy.celery import app as celery_app
from tests.live_gunicorn import SilentServer
from tests.orders.conftest import attach_to_session as attach
from tests.orders.conftest import make_cart, place, shown_figures

TIMEOUT, RETRIES = 2.0, 1
#: What checkout may take at most: every attempt times out, plus the library's back-off (≤ 1 s)
#: and 2 s for the shop's own work on a busy test machine.
BOUND = TIMEOUT * (1 + RETRIES) + 1.0 + 2.0


@pytest.fixture
def silent_stripe():
    server = SilentServer()
    yield server
    server.close()


@contextlib.contextmanager
def queued_tasks_not_run():
    """Tasks go to a queue (an in-memory broker) as in production, not run inside the request."""
    saved = celery_app.conf.broker_url, celery_app.conf.task_always_eager
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    celery_app.conf.broker_url, celery_app.conf.task_always_eager = "memory://", False
    try:
        yield
    finally:
        celery_app._pool = None
        celery_app.amqp._producer_pool = None
        celery_app.conf.broker_url, celery_app.conf.task_always_eager = saved


def test_a_hanging_stripe_delays_only_checkout_and_checkout_answers_in_time(
    transactional_db, localstripe, silent_stripe, general_tier, settings
):
    general_tier.stock = 3
    general_tier.save()
    earlier = place(
        make_cart(tier=general_tier)
    ).order  # a customer back from Stripe, payment not seen yet
    customer = Client()
    cart = make_cart(tier=general_tier, packages=2)
    attach(customer, cart)
    figures = shown_figures(customer)

    settings.STRIPE_API_BASE = silent_stripe.base
    settings.STRIPE_TIMEOUT_SECONDS = TIMEOUT
    settings.STRIPE_MAX_NETWORK_RETRIES = RETRIES
    outcome: dict = {}
    done = threading.Event()

    def checkout():
        started = time.monotonic()
        try:
            outcome["response"] = customer.post(
                reverse("checkout:checkout"),
                {
                    "email": "alex@example.com",
                    "name": "Alex Morgan",
                    "line1": "1 Main St",
                    "city": "Albany",
                    "state": "NY",
                    "zip_code": "12207",
                    "shipping_method": "standard",
                    "figures": figures,
                },
                HTTP_ACCEPT="application/json",
            )
        finally:
            outcome["seconds"] = time.monotonic() - started
            done.set()
            connections.close_all()

    with queued_tasks_not_run():
        thread = threading.Thread(target=checkout)
        thread.start()
        deadline = time.monotonic() + BOUND
        while not silent_stripe.accepted and time.monotonic() < deadline:
            time.sleep(0.02)
        assert silent_stripe.accepted, "checkout should be waiting on Stripe"

        # While checkout waits on Stripe, the rest of the shop answers.
        visitor = Client()
        assert visitor.get(reverse("catalog:product_list")).status_code == 200
        assert visitor.get(reverse("cart:detail")).status_code == 200
        order_page = visitor.get(services.order_link(earlier))
        assert order_page.status_code == 200
        assert "confirming your payment" in order_page.content.decode()
        assert not done.is_set(), (
            "the other pages answered while checkout was still waiting on Stripe"
        )

        thread.join(timeout=BOUND + 10)

    response = outcome["response"]
    assert outcome["seconds"] < BOUND
    assert response.status_code == 400
    assert response.json()["message"] == (
        "Our payment provider could not be reached. Please try again in a moment. Your cart has been kept."
    )
    assert CartLine.objects.filter(cart=cart, packages=2).exists()
    attempt = Order.objects.exclude(pk=earlier.pk).get()
    assert attempt.status == OrderStatus.CANCELED  # no pending order left behind
    general_tier.refresh_from_db()
    assert general_tier.stock == 3 and not Order.objects.filter(stock_reserved=True).exists()
    assert len(silent_stripe.accepted) == 1 + RETRIES  # bounded retries, then give up


#: Checkouts stuck on Stripe at once under gunicorn: more than the two sync workers that used to
#: stall the whole shop, as many as half the threads of two workers (gunicorn.conf.py).
STUCK_CHECKOUTS = 4


@pytest.mark.integration
def test_catalog_pages_answer_under_gunicorn_while_checkouts_hang_on_stripe(
    transactional_db, general_tier, tmp_path
):
    """gunicorn as deployed (gunicorn.conf.py: threads) with every checkout waiting on a hung Stripe."""
    from tests.live_gunicorn import (
        Gunicorn,
        checkout_form,
        customer_with_cart,
        post_checkout,
        server_env,
    )

    general_tier.stock = 100
    general_tier.save()
    stripe_api = SilentServer()
    env = server_env(
        STRIPE_API_BASE=stripe_api.base,
        STRIPE_TIMEOUT_SECONDS="25",
        STRIPE_MAX_NETWORK_RETRIES="0",
        WEB_CONCURRENCY="2",
        WEB_THREADS="4",
    )
    customers = [customer_with_cart(general_tier) for _ in range(STUCK_CHECKOUTS)]
    try:
        with Gunicorn(env=env, log=tmp_path / "gunicorn.log") as server:
            forms = [checkout_form(customer, server.base) for customer in customers]
            outcomes: list[dict] = [{} for _ in customers]
            threads = [
                threading.Thread(target=post_checkout, args=(customer, server.base, form, outcome))
                for customer, form, outcome in zip(customers, forms, outcomes)
            ]
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 30
            while len(stripe_api.accepted) < STUCK_CHECKOUTS and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(stripe_api.accepted) == STUCK_CHECKOUTS, (
                "every checkout should be waiting on Stripe"
            )

            visitor = requests.Session()
            for path in ("/", "/products/", f"/products/{general_tier.dosage.product.slug}/"):
                response = visitor.get(server.base + path, timeout=20)
                assert response.status_code == 200, path
            assert not any(outcomes), (
                "catalog pages answered while every checkout still waited on Stripe"
            )

            stripe_api.close()  # Stripe drops the connections: each checkout gets its defined outcome
            for thread in threads:
                thread.join(timeout=60)
        for outcome in outcomes:
            assert outcome.get("status") == 400, outcome
            assert "payment provider could not be reached" in outcome["body"]
    finally:
        stripe_api.close()
