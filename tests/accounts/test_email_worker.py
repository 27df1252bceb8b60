"""Account emails with a real Celery worker that is killed in the middle of sending one.

Two account emails (a password reset, a sign-up verification) are queued by real requests. The
first worker hangs while sending the first and is killed (SIGKILL: no cleanup, like an OOM kill);
its row stays "sending". A second worker starts; once the row is old enough to be presumed lost,
the periodic sweep (``email_requeue_stale``) hands it back, and every email arrives exactly once.
Redis DB 12 (``ACCOUNTS_TEST_BROKER_URL``), the same PostgreSQL test database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from notifications.models import EmailKind, EmailStatus, OutboundEmail
from notifications.services import SENDING_STALE_AFTER, email_requeue_stale
from notifications.tasks import send_email_task
from pharmacy.celery import app as celery_app
from tests.factories import UserFactory
from tests.notifications.test_worker_integration import ROOT, _database_url, _delivered, _wait_for
from tests.resources import redis_url

pytestmark = pytest.mark.integration
BROKER_URL = os.environ.get("ACCOUNTS_TEST_BROKER_URL") or redis_url("accounts_broker")
STRONG = "Plum-orchard-1987-lantern"


def _start_worker(queue: str, tmp_path: Path, name: str) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / f"{name}.log"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("EMAIL_URL", "CELERY_TASK_ALWAYS_EAGER")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="pharmacy.settings",
        PYTHONPATH=str(ROOT),
        DATABASE_URL=_database_url(),
        REDIS_URL=BROKER_URL,
        CELERY_BROKER_URL=BROKER_URL,
        EMAIL_BACKEND="tests.accounts.hanging_backend.HangingFileBackend",
        EMAIL_FILE_PATH=str(tmp_path / "mail"),
        HANGING_EMAIL_COUNTER=str(tmp_path / "attempts"),
    )
    with log.open("w") as handle:
        process = subprocess.Popen(
            [
                str(ROOT / ".venv" / "bin" / "celery"),
                "-A",
                "pharmacy",
                "worker",
                "-P",
                "solo",
                "-Q",
                queue,
                "-n",
                f"{name}-{queue}@%h",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "INFO",
            ],
            cwd=ROOT,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    _wait_for(
        lambda: "ready." in log.read_text() or process.poll() is not None,
        timeout=60,
        what="a worker",
        log=log,
    )
    assert process.poll() is None, log.read_text()
    return process, log


@pytest.fixture
def queue(transactional_db):
    if connection.vendor != "postgresql":
        pytest.skip("The worker shares the test database: needs PostgreSQL")
    broker = redis.Redis.from_url(BROKER_URL)
    try:
        broker.ping()
    except redis.exceptions.ConnectionError:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"Redis is not running at {BROKER_URL}")
    name = f"accounts-test-{uuid.uuid4().hex[:10]}"
    saved = {key: celery_app.conf[key] for key in ("task_always_eager", "broker_url")}
    celery_app.conf.update(task_always_eager=False, broker_url=BROKER_URL)
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    send_email_task.queue = name
    send_email_task._exec_options = None
    try:
        yield name
    finally:
        broker.delete(
            name,
            f"_kombu.binding.{name}",
            f"_kombu.binding_permanent.{name}",
            "unacked",
            "unacked_index",
        )
        if celery_app._pool is not None:
            celery_app._pool.force_close_all()
        celery_app.conf.update(saved)
        celery_app._pool = None
        celery_app.amqp._producer_pool = None
        send_email_task.queue = None
        send_email_task._exec_options = None


def test_reset_and_verification_emails_arrive_once_when_the_worker_dies_mid_send(queue, tmp_path):
    customer = UserFactory(email="reset.me@example.com")
    first, first_log = _start_worker(queue, tmp_path, "first")
    second = None
    try:
        client = Client()
        client.post(reverse("accounts:password_reset"), {"email": customer.email})
        client.post(
            reverse("accounts:signup"),
            {"email": "verify.me@example.com", "password1": STRONG, "password2": STRONG},
        )
        rows = list(OutboundEmail.objects.order_by("pk"))
        assert [row.kind for row in rows] == [
            EmailKind.ACCOUNT_PASSWORD_RESET,
            EmailKind.ACCOUNT_VERIFICATION,
        ]

        # The worker is inside the first send when it is killed.
        hanging = tmp_path / "attempts.hanging"
        _wait_for(hanging.exists, timeout=60, what="the first send to start", log=first_log)
        assert OutboundEmail.objects.get(pk=rows[0].pk).status == EmailStatus.SENDING
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=20)

        second, second_log = _start_worker(queue, tmp_path, "second")
        # Later: the sweep finds the row the dead worker left "sending" (and anything still queued).
        OutboundEmail.objects.update(
            updated_at=timezone.now() - SENDING_STALE_AFTER - timedelta(minutes=16)
        )
        assert email_requeue_stale() >= 1

        def all_sent():
            return not OutboundEmail.objects.exclude(status=EmailStatus.SENT).exists()

        _wait_for(all_sent, timeout=90, what="both emails to be sent", log=second_log)
        # Each email reached the mail server once (the killed attempt never did).
        _wait_for(
            lambda: len(_delivered(tmp_path / "mail")) >= 2,
            timeout=30,
            what="the files",
            log=second_log,
        )
        assert sorted(_delivered(tmp_path / "mail")) == sorted(str(row.pk) for row in rows)
        text = "".join(path.read_text() for path in (tmp_path / "mail").glob("*.log"))
        assert "Subject: Reset your Riverside Pharmacy password" in text
        assert "Subject: Confirm your email address for Riverside Pharmacy" in text
        assert OutboundEmail.objects.get(pk=rows[0].pk).attempts == 2
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
