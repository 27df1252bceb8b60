"""Metrics and alarms: /metrics closed to the public, the pharmacy's gauges move with the shop,
and staff see the same gauges on the admin index, highlighted past their thresholds."""

from __future__ import annotations

import json
import re
import time
import uuid

import pytest
import redis
from django.test import TestCase
from prometheus_client.parser import text_string_to_metric_families

from notifications.models import EmailKind, EmailStatus, OutboundEmail
from notifications.tasks import send_email_task
from orders.models import StripeEvent
from pharmacy.celery import app as celery_app
from pharmacy.metrics import gauge_readings
from tests.factories import UserFactory
from tests.localstripe import sign_webhook
from tests.orders.conftest import make_cart
from tests.prescriptions.prescription_support import authorise, place_rx

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-for-tests"
FLAKY = "tests.notifications.failing_backend.FlakyFileBackend"


@pytest.fixture
def scrape(client, settings):
    settings.METRICS_TOKEN = TOKEN

    def read() -> dict[str, float]:
        response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        assert response.status_code == 200
        return {
            sample.name: sample.value
            for family in text_string_to_metric_families(response.content.decode())
            for sample in family.samples
            if sample.name.startswith("pharmacy_")
        }

    return read


@pytest.fixture
def mail_server_down(settings, tmp_path, monkeypatch):
    settings.EMAIL_BACKEND = FLAKY
    settings.EMAIL_FILE_PATH = str(tmp_path / "mail")
    monkeypatch.setenv("FLAKY_EMAIL_COUNTER", str(tmp_path / "attempts"))
    monkeypatch.setenv("FLAKY_EMAIL_FAILURES", "99")


def _lost_webhook(client, order) -> None:
    """A signed Stripe event recorded and acknowledged, whose processing task was then lost."""
    payload = json.dumps(
        {
            "id": f"evt_{uuid.uuid4().hex}",
            "object": "event",
            "type": "payment_intent.succeeded",
            "created": int(time.time()),
            "data": {
                "object": {
                    "id": order.stripe_payment_intent_id,
                    "object": "payment_intent",
                    "metadata": {"order_id": str(order.id), "order_number": str(order.number)},
                }
            },
        }
    ).encode()
    with TestCase.captureOnCommitCallbacks(execute=False):
        response = client.post(
            "/stripe/webhook/",
            data=payload,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=sign_webhook(payload),
        )
    assert response.status_code == 200


def test_the_gauges_move_when_an_order_waits_an_email_fails_and_an_event_is_unprocessed(
    localstripe, client, baclofen, scrape, mail_server_down
):
    before = scrape()
    assert before["pharmacy_gauges_up"] == 1
    assert (
        before["pharmacy_review_queue_length"] == 0
        and "pharmacy_review_oldest_age_seconds" not in before
    )

    tier = baclofen.dosages.first().tiers.first()
    order = authorise(
        localstripe, place_rx(make_cart(tier=tier), tier=tier)
    )  # its emails fail: the server is down
    waiting = scrape()
    assert waiting["pharmacy_review_queue_length"] == 1
    assert 0 <= waiting["pharmacy_review_oldest_age_seconds"] < 600

    failed_before = waiting["pharmacy_emails_failed"]
    row = OutboundEmail.objects.create(
        kind=EmailKind.STAFF_NEW_ORDER, recipient="staff@example.com", dedupe_key="metrics-test"
    )
    queued = scrape()
    assert queued["pharmacy_emails_unsent"] == waiting["pharmacy_emails_unsent"] + 1
    assert queued["pharmacy_emails_oldest_unsent_age_seconds"] >= 0
    send_email_task.apply(args=[row.pk])  # in-process: one try, then parked as failed
    assert OutboundEmail.objects.get(pk=row.pk).status == EmailStatus.FAILED
    failed = scrape()
    assert failed["pharmacy_emails_failed"] == failed_before + 1
    assert failed["pharmacy_emails_unsent"] == waiting["pharmacy_emails_unsent"]

    assert failed["pharmacy_stripe_events_unprocessed"] == 0
    _lost_webhook(client, order)
    assert StripeEvent.objects.filter(processed=False).count() == 1
    assert scrape()["pharmacy_stripe_events_unprocessed"] == 1


def test_the_gauges_cost_four_queries_however_many_rows(
    django_assert_num_queries, settings, baclofen
):
    from tests.notifications.conftest import make_order

    settings.CELERY_TASK_ALWAYS_EAGER = True  # no Redis to ask
    with django_assert_num_queries(4):
        gauge_readings()
    for n in range(3):
        make_order(product=baclofen)
        OutboundEmail.objects.create(
            kind=EmailKind.STAFF_NEW_ORDER,
            recipient="s@example.com",
            dedupe_key=f"q{n}",
            status=EmailStatus.FAILED,
        )
        StripeEvent.objects.create(
            event_id=f"evt_q{n}", type="payment_intent.succeeded", payload={}
        )
    with django_assert_num_queries(4):
        readings = {reading.key: reading.value for reading in gauge_readings()}
    assert (
        readings["review_queue_length"],
        readings["emails_failed"],
        readings["stripe_events_unprocessed"],
    ) == (3, 3, 3)


# --- Closed to the public ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HTTP_AUTHORIZATION": "Bearer wrong-token"},
        {"HTTP_AUTHORIZATION": TOKEN},
        {"HTTP_AUTHORIZATION": "Bearer "},
    ],
    ids=["no-token", "wrong-token", "token-without-bearer", "empty-bearer"],
)
def test_the_endpoint_is_a_404_without_the_token(client, settings, headers):
    settings.METRICS_TOKEN = TOKEN
    response = client.get("/metrics", **headers)
    assert response.status_code == 404 and b"pharmacy_" not in response.content


def test_an_empty_token_setting_opens_nothing(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


def test_the_token_opens_the_request_metrics_and_the_gauges(client, settings, scrape):
    client.get("/healthz")
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200 and response["Cache-Control"].startswith("max-age=0")
    body = response.content.decode()
    assert re.search(
        r'django_http_requests_latency_seconds_by_view_method_count\{method="GET",view="healthz"\} [1-9]',
        body,
    )
    assert (
        "django_http_responses_total_by_status_total" in body
        and "pharmacy_review_queue_length" in body
    )


def test_an_allowed_network_is_let_in_directly_but_not_through_the_proxy(client, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.168.1.9").status_code == 404
    # Through the reverse proxy the peer is the proxy: only the token counts there.
    assert (
        client.get(
            "/metrics", REMOTE_ADDR="10.1.2.3", HTTP_X_FORWARDED_FOR="203.0.113.9"
        ).status_code
        == 404
    )


def test_a_direct_plain_http_scrape_is_not_redirected_to_https(client, settings):
    """Prometheus inside the private network scrapes a web process over HTTP, as load balancers probe."""
    settings.SECURE_SSL_REDIRECT = True
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert (
        client.get("/metrics/", REMOTE_ADDR="10.1.2.3").status_code == 301
    )  # nothing else is exempt


# --- The Celery queue ---------------------------------------------------------------------------

QUEUE_REDIS = "redis://127.0.0.1:6379/11"


def test_the_celery_queue_length_is_the_redis_list_length(settings, scrape, monkeypatch):
    queue = f"metrics-test-{uuid.uuid4().hex}"
    settings.CELERY_BROKER_URL, settings.CELERY_TASK_ALWAYS_EAGER = QUEUE_REDIS, False
    monkeypatch.setitem(celery_app.conf, "task_default_queue", queue)
    server = redis.Redis.from_url(QUEUE_REDIS)
    try:
        server.lpush(queue, "a", "b", "c")
        assert scrape()["pharmacy_celery_queue_length"] == 3
    finally:
        server.delete(queue)
        server.close()


def test_redis_down_reports_minus_one_and_the_rest_still_answers(
    settings, scrape, unreachable_redis
):
    settings.CELERY_BROKER_URL, settings.CELERY_TASK_ALWAYS_EAGER = unreachable_redis, False
    readings = scrape()
    assert readings["pharmacy_celery_queue_length"] == -1
    assert readings["pharmacy_gauges_up"] == 1 and "pharmacy_review_queue_length" in readings


def test_without_redis_there_is_no_queue_gauge(settings, scrape):
    settings.CELERY_BROKER_URL, settings.CELERY_TASK_ALWAYS_EAGER = "memory://", True
    assert "pharmacy_celery_queue_length" not in scrape()


# --- The admin index --------------------------------------------------------------------------


def _gauge(html: str, key: str) -> str:
    match = re.search(rf'<li class="([^"]*)" data-gauge="{key}">(.*?)</li>', html, re.DOTALL)
    assert match, f"no {key} gauge on the page"
    return match.group(1) + " " + re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(2)))


def test_the_admin_index_shows_the_gauges_and_highlights_them_from_the_threshold(
    client, settings, baclofen
):
    from tests.notifications.conftest import make_order

    make_order(product=baclofen)  # one order waiting for review
    OutboundEmail.objects.create(
        kind=EmailKind.STAFF_NEW_ORDER,
        recipient="staff@example.com",
        dedupe_key="x",
        status=EmailStatus.FAILED,
        last_error="SMTP 550",
    )
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    settings.GAUGE_THRESHOLDS = {
        **settings.GAUGE_THRESHOLDS,
        "review_queue_length": 2,
        "emails_failed": 1,
    }
    page = client.get("/admin/").content.decode()
    assert "The pharmacy now" in page
    queue = _gauge(page, "review_queue_length")
    assert (
        "Orders waiting for pharmacist review" in queue
        and " 1 " in queue
        and "gauge-warn" not in queue
    )
    failed = _gauge(page, "emails_failed")
    assert "gauge-warn" in failed and "failed for good" in failed and "needs attention" in failed
    assert "/admin/notifications/outboundemail/?status__exact=failed" in page
    assert _gauge(page, "stripe_events_unprocessed").startswith("gauge ")

    settings.GAUGE_THRESHOLDS = {**settings.GAUGE_THRESHOLDS, "review_queue_length": 1}
    assert "gauge-warn" in _gauge(client.get("/admin/").content.decode(), "review_queue_length")


def test_a_stuck_database_costs_the_scrape_its_statement_timeout_not_a_500(settings, scrape):
    """Another session holds a lock the gauge query waits for: the scrape answers, gauges_up 0."""
    import psycopg
    from django.db import connection

    settings.METRICS_STATEMENT_TIMEOUT = 0.2
    params = connection.get_connection_params()
    with psycopg.connect(**{k: v for k, v in params.items() if k != "cursor_factory"}) as other:
        other.execute("LOCK TABLE orders_stripeevent IN ACCESS EXCLUSIVE MODE")
        readings = scrape()
        other.rollback()
    assert readings["pharmacy_gauges_up"] == 0 and "pharmacy_review_queue_length" not in readings
    assert scrape()["pharmacy_gauges_up"] == 1
