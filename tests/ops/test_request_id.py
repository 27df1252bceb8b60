"""Request ids: on every response, on every log record of the request, and in the tasks it queues."""

import json
import logging
import re

import pytest
from celery import signals
from django.test import override_settings

from pharmacy.celery import app
from pharmacy.logging import JSONFormatter, RequestIDFilter
from tests.ops.conftest import celery_broker

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.ops.urls")]


class Collect(logging.Handler):
    """Records as the configured console handler sees them (same filter)."""

    def __init__(self):
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.addFilter(RequestIDFilter())

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def collected():
    handler = Collect()
    logger = logging.getLogger("tests.ops")  # "tests.ops.task" propagates to it
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler.records
    logger.removeHandler(handler)


def test_every_response_carries_a_fresh_request_id(client):
    first = client.get("/healthz")["X-Request-ID"]
    second = client.get("/healthz")["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert first != second


def test_a_safe_incoming_request_id_is_kept(client):
    response = client.get("/healthz", headers={"X-Request-ID": "lb-7f3a:42"})
    assert response["X-Request-ID"] == "lb-7f3a:42"


@pytest.mark.parametrize("unsafe", ["has space", "x" * 200, 'quote"s', "semi;colon", ""])
def test_an_unsafe_incoming_request_id_is_replaced(client, unsafe):
    response = client.get("/healthz", headers={"X-Request-ID": unsafe})
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


def test_log_records_of_a_request_carry_its_id(client, collected):
    response = client.get("/log-and-queue/", headers={"X-Request-ID": "req-123"})
    assert response.status_code == 200
    view_records = [r for r in collected if r.getMessage() == "view ran"]
    assert [r.request_id for r in view_records] == ["req-123"]


def test_log_records_outside_a_request_say_so(collected):
    logging.getLogger("tests.ops").info("no request here")
    assert collected[-1].request_id == "-"


@override_settings(CELERY_TASK_ALWAYS_EAGER=True)
def test_an_in_process_task_logs_with_the_request_id(client, collected):
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        client.get("/log-and-queue/", headers={"X-Request-ID": "req-eager"})
    finally:
        app.conf.task_always_eager = eager
    task_records = [r for r in collected if r.getMessage() == "task ran"]
    assert [r.request_id for r in task_records] == ["req-eager"]


def test_a_task_published_in_a_request_carries_the_id_in_its_headers(client):
    published: list[dict] = []

    def capture(sender=None, headers=None, **kwargs):
        published.append(dict(headers or {}))

    signals.before_task_publish.connect(capture, weak=False)
    try:
        with celery_broker("memory://"):
            client.get("/log-and-queue/", headers={"X-Request-ID": "req-queued"})
    finally:
        signals.before_task_publish.disconnect(capture)
    assert [h.get("request_id") for h in published] == ["req-queued"]
    assert published[0]["task"] == "tests.ops.record_request_id"


def test_a_worker_restores_the_id_from_the_message_headers(collected):
    """What a worker does with a received message: the task's log lines get the publisher's id."""
    from tests.ops.urls import record_request_id

    record_request_id.apply(headers={"request_id": "from-the-web"})
    assert [r.request_id for r in collected if r.getMessage() == "task ran"] == ["from-the-web"]
    logging.getLogger("tests.ops").info("after the task")
    assert collected[-1].request_id == "-"


def test_json_formatter_writes_one_parseable_line_with_the_request_id():
    record = logging.LogRecord("shop", logging.WARNING, __file__, 1, "order %s held", ("A1",), None)
    record.request_id = "abc"
    record.order = "A1"
    line = JSONFormatter().format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert data["message"] == "order A1 held"
    assert data["level"] == "WARNING"
    assert data["request_id"] == "abc"
    assert data["order"] == "A1"


def test_json_formatter_keeps_tracebacks_on_one_line():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("shop", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = JSONFormatter().format(record)
    assert "\n" not in line
    assert "ValueError: boom" in json.loads(line)["exc_info"]
