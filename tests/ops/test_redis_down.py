"""Redis unreachable (refused, or accepting and never answering): the shop keeps serving.

Sessions live in the database (cached_db); cache errors are logged and treated as misses; an
email whose hand-off to Celery fails stays queued and the periodic sweep sends it later.
"""

import logging
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone
from djmoney.money import Money

from notifications.models import EmailKind, EmailStatus, OutboundEmail
from notifications.services import email_requeue_stale
from orders.emails import order_email
from pharmacy import health
from pharmacy.settings import redis_caches
from tests.factories import PackageTierFactory, UserFactory
from tests.notifications.conftest import make_order
from tests.ops.conftest import celery_broker

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


def redis_settings(url: str) -> dict:
    """The production cache and session settings (pharmacy/settings.py), pointed at ``url``."""
    return {
        "REDIS_URL": url,
        "CACHES": redis_caches(url),
        "SESSION_ENGINE": "django.contrib.sessions.backends.cached_db",
        "CELERY_BROKER_URL": url,
        "CELERY_TASK_ALWAYS_EAGER": False,
    }


def test_every_redis_wait_is_bounded_by_the_settings():
    # The bound the pages below rely on: one try per cache call, each well under a second.
    options = settings.REDIS_CACHE_OPTIONS
    assert 0 < options["RETRY_AFTER_SECONDS"] <= 30
    assert 0 < options["SOCKET_CONNECT_TIMEOUT"] <= 0.5 and 0 < options["SOCKET_TIMEOUT"] <= 0.5
    assert 0 < settings.CELERY_PUBLISH_TIMEOUT <= 1
    assert health.CHECK_TIMEOUT_SECONDS <= health.READY_DEADLINE_SECONDS < 1.5


def test_catalog_sign_in_cart_and_checkout_work_without_redis(unreachable_redis, caplog):
    tier = PackageTierFactory(price=Money("12.00", "USD"), dosage__product__name="Cetirizine")
    product = tier.dosage.product
    customer = UserFactory(email="ann@example.com")
    caplog.set_level(logging.WARNING, logger="pharmacy.cache")
    with override_settings(**redis_settings(unreachable_redis)), celery_broker(unreachable_redis):
        client = Client()
        assert client.get("/").status_code == 200
        assert client.get("/products/").status_code == 200
        assert client.get(product.get_absolute_url()).status_code == 200

        # Sign in (field names of both the Django and the allauth form).
        response = client.post(
            reverse(settings.LOGIN_URL),
            {"username": customer.email, "login": customer.email, "password": PASSWORD},
        )
        assert response.status_code == 302, response.content[:500]
        assert client.get(reverse("accounts:dashboard")).status_code == 200

        response = client.post("/cart/add/", {"tier_id": tier.pk, "packages": 2})
        assert response.status_code == 302
        cart_page = client.get("/cart/")
        assert cart_page.status_code == 200
        assert (
            "Cetirizine" in cart_page.content.decode()
        )  # the session (in the database) kept the cart
        checkout = client.get("/checkout/")
        assert checkout.status_code == 200
        assert "Cetirizine" in checkout.content.decode()
    # The failures were logged, not hidden.
    assert any(record.name == "pharmacy.cache" for record in caplog.records)


def test_readyz_answers_503_quickly_when_redis_is_unreachable(unreachable_redis):
    with override_settings(**redis_settings(unreachable_redis)), celery_broker(unreachable_redis):
        started = time.perf_counter()
        response = Client().get("/readyz")
        elapsed = time.perf_counter() - started
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["redis"]["status"] == "error"
    assert body["checks"]["celery"]["status"] == "error"
    assert elapsed < 1.5, f"/readyz took {elapsed:.2f} s"


def test_an_email_that_cannot_be_queued_stays_queued_and_the_sweep_sends_it(
    unreachable_redis, baclofen, django_capture_on_commit_callbacks, mailoutbox, caplog
):
    order = make_order(product=baclofen)
    with celery_broker(unreachable_redis):
        started = time.perf_counter()
        with django_capture_on_commit_callbacks(execute=True):
            email = order_email(order=order, kind=EmailKind.ORDER_RECEIVED)  # no exception
        assert time.perf_counter() - started < 5  # bounded by CELERY_PUBLISH_TIMEOUT, not hung
        assert "stays queued for the sweep" in caplog.text
        email.refresh_from_db()
        assert email.status == EmailStatus.QUEUED and email.attempts == 0

        # Fifteen minutes later the broker is still down: the sweep tries, gives up, keeps it.
        OutboundEmail.objects.filter(pk=email.pk).update(
            updated_at=timezone.now() - timedelta(minutes=20)
        )
        with django_capture_on_commit_callbacks(execute=True):
            assert email_requeue_stale() == 1
        email.refresh_from_db()
        assert email.status == EmailStatus.QUEUED and mailoutbox == []

    # Redis is back (tasks run in-process here, standing in for the worker): the sweep sends it once.
    with celery_broker("memory://", eager=True), django_capture_on_commit_callbacks(execute=True):
        assert email_requeue_stale() == 1
    email.refresh_from_db()
    assert email.status == EmailStatus.SENT
    assert [message.to for message in mailoutbox] == [[order.email]]


def test_the_sign_in_lock_keeps_counting_while_redis_is_unreachable(unreachable_redis):
    # allauth's rate limits live in the cache: with Redis away they count in this process's memory
    # (pharmacy.cache) instead of refusing everyone (429) or forgetting the failures.
    customer = UserFactory(email="bob@example.com")
    with override_settings(**redis_settings(unreachable_redis)), celery_broker(unreachable_redis):
        client = Client()
        login = reverse(settings.LOGIN_URL)
        for _ in range(settings.LOGIN_FAILURES_PER_ACCOUNT_AND_ADDRESS):
            response = client.post(login, {"login": customer.email, "password": "wrong"})
            assert (
                response.status_code == 200
                and "do not match an account" in response.content.decode()
            )
        locked = client.post(login, {"login": customer.email, "password": PASSWORD})
        assert "Sign-in is paused" in locked.content.decode()
        # The owner, from another address, is not kept out.
        elsewhere = client.post(
            login, {"login": customer.email, "password": PASSWORD}, REMOTE_ADDR="198.51.100.7"
        )
        assert elsewhere.status_code == 302
