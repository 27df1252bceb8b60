"""A real Celery worker over Redis: readiness sees it, and its log lines carry the request's id."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.test import override_settings

from pharmacy.celery import app
from tests.ops.conftest import celery_broker
from tests.resources import redis_url

pytestmark = [pytest.mark.integration, pytest.mark.django_db, pytest.mark.urls("tests.ops.urls")]

BASE_DIR = Path(__file__).resolve().parents[2]
BROKER = redis_url("ops_broker")


@pytest.fixture
def worker(tmp_path):
    try:
        redis.Redis.from_url(BROKER, socket_connect_timeout=1).flushdb()
    except redis.ConnectionError:
        pytest.skip(f"Redis is not running at {BROKER}")
    log_path = tmp_path / "worker.log"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "DATABASE_URL": os.environ.get("DATABASE_URL", "sqlite:///:memory:"),
        "REDIS_URL": BROKER,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "LOG_FORMAT": "json",
        "DJANGO_SETTINGS_MODULE": "pharmacy.settings",
    }
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "pharmacy",
                "worker",
                "--include",
                "tests.ops.urls",
                "--pool",
                "solo",
                "--hostname",
                f"ops-test-{os.getpid()}@localhost",
                "--without-heartbeat",
                "--without-mingle",
                "--without-gossip",
                "--loglevel",
                "INFO",
            ],
            cwd=BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        with celery_broker(BROKER):
            deadline = time.monotonic() + 60
            while not app.control.ping(timeout=0.5):
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("the Celery worker did not start:\n" + log_path.read_text())
            yield log_path
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def json_lines(path: Path) -> list[dict]:
    lines = []
    for raw in path.read_text().splitlines():
        try:
            lines.append(json.loads(raw))
        except ValueError:
            continue  # Celery's start-up banner is plain text
    return lines


def test_readiness_sees_a_running_worker(client, worker):
    with override_settings(
        REDIS_URL=BROKER, CELERY_BROKER_URL=BROKER, CELERY_TASK_ALWAYS_EAGER=False
    ):
        response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json()["checks"]["celery"]["status"] == "ok"


def test_the_worker_logs_the_task_with_the_publishing_request_id(client, worker):
    response = client.get("/log-and-queue/", headers={"X-Request-ID": "req-through-redis"})
    assert response.status_code == 200
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ran = [line for line in json_lines(worker) if line.get("message") == "task ran"]
        if ran:
            break
        time.sleep(0.2)
    assert [line["request_id"] for line in ran] == ["req-through-redis"]
    assert ran[0]["logger"] == "tests.ops.task"
