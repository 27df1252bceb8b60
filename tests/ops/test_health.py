"""Liveness and readiness probes, answered without a login and without an HTTPS redirect."""

import pytest
from django.test import Client, override_settings

from tests.ops.conftest import celery_broker
from tests.resources import redis_url

pytestmark = pytest.mark.django_db

CLOSED_PORT_REDIS = "redis://127.0.0.1:1/0"


def test_healthz_answers_ok_without_touching_the_database(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok"
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


@override_settings(REDIS_URL="", CELERY_TASK_ALWAYS_EAGER=True)
def test_readyz_reports_the_database_check(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["database"]["ms"] >= 0
    assert "redis" not in body["checks"]


@override_settings(REDIS_URL=redis_url("readiness"), CELERY_TASK_ALWAYS_EAGER=True)
def test_readyz_pings_redis_when_configured(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json()["checks"]["redis"]["status"] == "ok"


@override_settings(REDIS_URL=CLOSED_PORT_REDIS, CELERY_TASK_ALWAYS_EAGER=True)
def test_readyz_is_503_when_redis_is_unreachable(client):
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["checks"]["redis"]["status"] == "error"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["redis"]["ms"] < 3000


@override_settings(
    REDIS_URL=redis_url("readiness"),
    CELERY_BROKER_URL=redis_url("silent_broker"),
    CELERY_TASK_ALWAYS_EAGER=False,
)
def test_readyz_is_503_when_no_celery_worker_answers(client, settings):
    with celery_broker(settings.CELERY_BROKER_URL):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["celery"]["status"] == "error"


@override_settings(CELERY_BROKER_URL="memory://", CELERY_TASK_ALWAYS_EAGER=True, REDIS_URL="")
def test_readyz_skips_celery_when_tasks_run_in_process(client):
    assert "celery" not in client.get("/readyz").json()["checks"]


def test_probes_are_exempt_from_the_https_redirect():
    with override_settings(SECURE_SSL_REDIRECT=True, REDIS_URL="", CELERY_TASK_ALWAYS_EAGER=True):
        client = Client()
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200
        redirected = client.get("/products/")
        assert redirected.status_code == 301
        assert redirected["Location"].startswith("https://")


def test_probes_refuse_writes(client):
    assert client.post("/healthz").status_code == 405
