"""A real Celery worker, real Redis, the same PostgreSQL test database: one email, exactly once.

The worker runs as a subprocess (`celery -A pharmacy worker -P solo`) on a queue of its own in
Redis DB 5, with the test-only flaky backend as its mail server: the first send fails with an
SMTP error; the row waits to retry (after 1 s here, ``EMAIL_RETRY_FIRST_SECONDS``), this process
plays beat by running the sweep, and the retry goes through and writes the message to a tmp dir.
The order is placed and its card authorised through localstripe (the offline Stripe); the
confirmation is queued through ``email_queue`` as the payment webhook's handler does.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from django.db import connection, transaction

from catalog.models import PackageTier
from notifications.models import EmailKind, EmailStatus, OutboundEmail
from notifications.services import email_requeue_stale
from notifications.tasks import send_email_task
from orders.emails import order_email
from orders.services import order_sync_payment
from orders.state import PaymentStatus
from pharmacy.celery import app as celery_app
from tests.localstripe import CARD_OK, browser_confirm
from tests.orders.conftest import make_cart, place
from tests.resources import redis_url

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BROKER_URL = os.environ.get("NOTIFICATIONS_TEST_BROKER_URL") or redis_url("notifications_broker")
FLAKY = "tests.notifications.failing_backend.FlakyFileBackend"


def _database_url() -> str:
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    return f"postgres://{credentials}@{host}/{db['NAME']}"


def _wait_for(predicate, *, timeout: float, what: str, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"Timed out waiting for {what}. Worker log:\n{log.read_text()[-4000:]}")


@pytest.fixture
def broker():
    client = redis.Redis.from_url(BROKER_URL)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"Redis is not running at {BROKER_URL}")
    return client


@pytest.fixture
def worker(transactional_db, broker, tmp_path):
    """A Celery worker subprocess consuming a queue of its own; this process publishes to it."""
    if connection.vendor != "postgresql":
        pytest.skip("The worker shares the test database: needs PostgreSQL")
    saved_conf = {key: celery_app.conf[key] for key in ("task_always_eager", "broker_url")}
    queue = f"notifications-test-{uuid.uuid4().hex[:10]}"
    mail_dir, counter, log = tmp_path / "mail", tmp_path / "attempts", tmp_path / "worker.log"
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
        EMAIL_BACKEND=FLAKY,
        EMAIL_FILE_PATH=str(mail_dir),
        FLAKY_EMAIL_FAILURES="1",
        EMAIL_RETRY_FIRST_SECONDS="1",
        FLAKY_EMAIL_COUNTER=str(counter),
        AXES_ENABLED="0",
    )
    with log.open("w") as log_handle:
        process = subprocess.Popen(
            [
                str(ROOT / ".venv" / "bin" / "celery"),
                "-A",
                "pharmacy",
                "worker",
                "-P",
                "solo",
                "--concurrency",
                "1",
                "-Q",
                queue,
                "-n",
                f"{queue}@%h",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "INFO",
            ],
            cwd=ROOT,
            env=env,
            stdout=log_handle,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for(
            lambda: "ready." in log.read_text() or process.poll() is not None,
            timeout=60,
            what="the worker",
            log=log,
        )
        assert process.poll() is None, log.read_text()

        # This process publishes to the same Redis, on the worker's queue, instead of running in-process.
        celery_app.conf.update(task_always_eager=False, broker_url=BROKER_URL)
        celery_app._pool = None
        celery_app.amqp._producer_pool = None
        send_email_task.queue = queue
        send_email_task._exec_options = None
        yield type(
            "Worker", (), {"log": log, "mail_dir": mail_dir, "counter": counter, "queue": queue}
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        broker.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
        if celery_app._pool is not None:
            celery_app._pool.force_close_all()
        # Later tests publish to whatever broker the settings name, in-process, through fresh pools.
        celery_app.conf.update(saved_conf)
        celery_app._pool = None
        celery_app.amqp._producer_pool = None
        send_email_task.queue = None
        send_email_task._exec_options = None


def _delivered(mail_dir: Path) -> list[str]:
    """The X-Pharmacy-Email-Id header of every message the file backend wrote."""
    return [
        line.split(":", 1)[1].strip()
        for path in sorted(mail_dir.glob("*.log"))
        for line in path.read_text().splitlines()
        if line.startswith("X-Pharmacy-Email-Id:")
    ]


def test_confirmation_email_arrives_exactly_once_despite_a_duplicate_webhook_and_an_smtp_failure(
    worker, localstripe, baclofen
):
    # A real checkout: the cart becomes an order, the card is authorised on localstripe.
    tier = PackageTier.objects.get(dosage__product=baclofen, dosage__strength="10mg", quantity=90)
    placed = place(make_cart(tier=tier))
    assert (
        browser_confirm(
            base=localstripe.base,
            intent_id=placed.order.stripe_payment_intent_id,
            card_number=CARD_OK,
        )["status"]
        == "requires_capture"
    )

    # Stripe's webhook arrives twice. Each delivery syncs the order and queues the confirmation
    # in its own transaction (the explicit email_queue is the call the orders flow makes once it
    # is wired in; with both, the dedupe key still makes it one email).
    for _ in range(2):
        with transaction.atomic():
            order = order_sync_payment(order_id=placed.order.pk)
            order_email(order=order, kind=EmailKind.ORDER_RECEIVED)
    assert order.payment_status == PaymentStatus.AUTHORIZED
    row = OutboundEmail.objects.get(order=order, kind=EmailKind.ORDER_RECEIVED)

    def all_sent():
        email_requeue_stale()  # beat's minute sweep, run here as often as the test polls
        return not OutboundEmail.objects.exclude(status=EmailStatus.SENT).exists()

    _wait_for(all_sent, timeout=60, what="the emails to be sent", log=worker.log)
    row.refresh_from_db()
    assert row.last_error == ""
    assert row.subject == f"We've received your order {order.number}"
    log = worker.log.read_text()
    assert "failed (retrying): Simulated outage (attempt 1)" in log
    # One failed attempt (the simulated SMTP outage), then exactly one attempt per email.
    rows = list(OutboundEmail.objects.values_list("pk", "attempts"))
    assert sum(attempts for _, attempts in rows) == len(rows) + 1
    assert int(worker.counter.read_text()) == len(rows) + 1

    # A redelivered task message (broker redelivery, a second worker) finds the row sent.
    duplicate = send_email_task.delay(row.pk)
    _wait_for(
        lambda: f"[{duplicate.id}] succeeded" in worker.log.read_text(),
        timeout=30,
        what="the duplicate task",
        log=worker.log,
    )

    # Every email of the outbox arrived exactly once; the confirmation among them.
    assert sorted(_delivered(worker.mail_dir)) == sorted(str(pk) for pk, _ in rows)
    assert int(worker.counter.read_text()) == len(rows) + 1
    message = "".join(path.read_text() for path in worker.mail_dir.glob("*.log"))
    assert f"To: {order.email}" in message
    subjects = [line for line in message.splitlines() if line.startswith("Subject:")]
    assert subjects.count(f"Subject: We've received your order {order.number}") == 1
    assert not any("baclofen" in subject.casefold() for subject in subjects)
    row.refresh_from_db()
    assert row.status == EmailStatus.SENT
