"""A mail server down for seconds, minutes or hours: every email goes once it is back, exactly once.

The clock is frozen (time-machine) and moved the way beat would see it: a minute at a time, or
straight to the next minute in which a retry is due. The flaky backend is down until a moment of
that clock; the sweep (``email_requeue_stale``) runs at each tick and hands due rows to the task,
in-process, as a worker would take them. Nothing here waits in real time.
"""

import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings
from django.db import connection

from notifications import services
from notifications.gauges import OutboxHealth, outbox_health
from notifications.models import EmailKind, EmailStatus, OutboundEmail
from notifications.services import (
    email_queue_message,
    email_requeue_stale,
    email_resend,
    email_send,
    failed_emails_digest,
    retry_delay,
)
from orders.emails import order_email, order_email_context
from orders.state import PaymentStatus
from tests.notifications.conftest import make_order

START = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


@pytest.fixture
def with_worker(settings):
    """A deployment with a worker and beat: a failed send waits for the sweep (not final)."""
    settings.CELERY_TASK_ALWAYS_EAGER = False


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def _now() -> datetime:
    from django.utils import timezone

    return timezone.now()


def beat(clock, *, until: datetime, capture) -> int:
    """Run the minute sweep until nothing waits to retry (or ``until``); the number of sweeps."""
    sweeps = 0
    while _now() < until:
        due = (
            OutboundEmail.objects.filter(status=EmailStatus.RETRYING)
            .order_by("next_attempt_at")
            .values_list("next_attempt_at", flat=True)
            .first()
        )
        if due is None:
            break
        # Beat ticks on the minute: the first tick at or after the earliest retry.
        minutes = max(1, -(-int((due - _now()).total_seconds()) // 60))
        clock.shift(timedelta(minutes=minutes))
        with capture(execute=True):
            email_requeue_stale()
        sweeps += 1
    return sweeps


def queue_the_four(order, capture):
    """What the 80 s outage lost: a password reset, a confirmation, the staff notice, a receipt."""
    with capture(execute=True):
        email_queue_message(
            kind=EmailKind.ACCOUNT_PASSWORD_RESET,
            to="alex@example.com",
            subject="Reset your password",
            text="Use this link to choose a new password.",
        )
        order_email(order=order, kind=EmailKind.ORDER_RECEIVED)
        order_email(order=order, kind=EmailKind.STAFF_NEW_ORDER)
        order_email(order=order, kind=EmailKind.PAYMENT_CAPTURED)


def test_retries_wait_a_minute_doubling_to_an_hour_and_span_a_day(monkeypatch):
    monkeypatch.setattr(services.random, "uniform", lambda low, high: low)  # the shortest waits
    delays = [retry_delay(attempts=n) for n in range(1, settings.EMAIL_MAX_ATTEMPTS)]
    assert delays[:7] == [timedelta(minutes=m) for m in (1, 2, 4, 8, 16, 32, 60)]
    assert set(delays[6:]) == {timedelta(hours=1)}
    assert timedelta(days=1) <= sum(delays, timedelta()) < timedelta(days=1, hours=1)
    assert settings.EMAIL_MAX_ATTEMPTS == 30
    monkeypatch.setattr(services.random, "uniform", lambda low, high: high)  # the longest
    assert retry_delay(attempts=1) == timedelta(seconds=75)
    assert retry_delay(attempts=40) == timedelta(minutes=75)


@pytest.mark.parametrize(
    "outage, error",
    [
        (timedelta(seconds=80), "disconnected"),
        (timedelta(minutes=10), "refused"),
        (timedelta(hours=6), "busy"),
    ],
    ids=["80s", "10min", "6h"],
)
def test_an_smtp_outage_delays_every_email_and_loses_none(
    outage, error, baclofen, flaky_mail, with_worker, clock, django_capture_on_commit_callbacks
):
    order = make_order(product=baclofen, payment_status=PaymentStatus.CAPTURED)
    back = START + outage
    flaky_mail.down_until(back, error=error)

    queue_the_four(order, django_capture_on_commit_callbacks)
    rows = list(OutboundEmail.objects.all())
    assert len(rows) == 4 and {row.status for row in rows} == {EmailStatus.RETRYING}
    health = outbox_health()
    assert (health.unsent, health.failed) == (4, 0)

    beat(clock, until=START + timedelta(days=2), capture=django_capture_on_commit_callbacks)

    rows = list(OutboundEmail.objects.all())
    assert {row.status for row in rows} == {EmailStatus.SENT}
    assert flaky_mail.delivered_ids() == {str(row.pk): 1 for row in rows}
    # Sent after the server came back, and soon after: within the wait then due plus a tick.
    latest_wait = min(1.25 * (outage + timedelta(minutes=1)), timedelta(minutes=75))
    for row in rows:
        assert back <= row.sent_at <= back + latest_wait + timedelta(minutes=1), (
            row.kind,
            row.sent_at - back,
        )
    assert flaky_mail.attempts() == sum(row.attempts for row in rows)
    assert outbox_health() == OutboxHealth(unsent=0, failed=0, oldest_unsent_age=None)


def test_a_server_down_for_good_fails_the_email_after_a_day_and_staff_hear_of_it(
    order, flaky_mail, with_worker, clock, django_capture_on_commit_callbacks
):
    flaky_mail.down_until(START + timedelta(days=30))
    with django_capture_on_commit_callbacks(execute=True):
        row = order_email(order=order, kind=EmailKind.ORDER_RECEIVED)

    clock.shift(timedelta(hours=5))
    health = outbox_health()
    assert (health.unsent, health.failed, health.oldest_unsent_age) == (1, 0, timedelta(hours=5))

    beat(clock, until=START + timedelta(days=3), capture=django_capture_on_commit_callbacks)
    row.refresh_from_db()
    assert (row.status, row.attempts, row.next_attempt_at) == (
        EmailStatus.FAILED,
        settings.EMAIL_MAX_ATTEMPTS,
        None,
    )
    assert row.updated_at - START >= timedelta(days=1)
    assert flaky_mail.delivered() == 0
    assert outbox_health() == OutboxHealth(unsent=0, failed=1, oldest_unsent_age=None)

    # The server is back: the hourly staff digest lists the email once, and staff resend it.
    flaky_mail.down_until(START)
    with django_capture_on_commit_callbacks(execute=True):
        digest = failed_emails_digest()
    digest.refresh_from_db()
    assert digest.status == EmailStatus.SENT and digest.recipient == settings.PHARMACY_STAFF_EMAIL
    assert digest.subject == "1 email could not be sent"
    body = flaky_mail.messages()
    assert "Order received to alex@example.com" in body and "SMTPServerDisconnected" in body
    assert f"/admin/notifications/outboundemail/{row.pk}/change/" in body
    with django_capture_on_commit_callbacks(execute=True):
        assert failed_emails_digest() is None  # listed once
    with django_capture_on_commit_callbacks(execute=True):
        assert email_resend(email=row) is True
    row.refresh_from_db()
    assert row.status == EmailStatus.SENT
    assert flaky_mail.delivered_ids()[str(row.pk)] == 1


@pytest.mark.parametrize(
    "error, temporary",
    [
        ("disconnected", True),
        ("refused", True),
        ("timeout", True),
        ("busy", True),  # 451
        ("mailbox_full", True),  # 452 for the recipient
        ("no_such_user", False),  # 550 for the recipient
        ("rejected", False),  # 554 for the message
    ],
)
def test_a_refusal_fails_at_once_and_anything_that_may_pass_is_retried(
    error, temporary, order, flaky_mail, with_worker, clock, django_capture_on_commit_callbacks
):
    flaky_mail(1, error=error)
    with django_capture_on_commit_callbacks(execute=True):
        row = order_email(order=order, kind=EmailKind.ORDER_RECEIVED)
    row.refresh_from_db()
    assert row.status == (EmailStatus.RETRYING if temporary else EmailStatus.FAILED)
    beat(clock, until=START + timedelta(hours=1), capture=django_capture_on_commit_callbacks)
    row.refresh_from_db()
    assert (row.status, row.attempts) == (
        (EmailStatus.SENT, 2) if temporary else (EmailStatus.FAILED, 1)
    )


def test_a_bad_address_fails_at_once(
    order, flaky_mail, with_worker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        row = order_email(order=order, kind=EmailKind.ORDER_RECEIVED)
    OutboundEmail.objects.filter(pk=row.pk).update(
        status=EmailStatus.QUEUED, recipient="alex@exa\nmple.com"
    )
    with pytest.raises(ValueError):
        email_send(log_id=row.pk)
    row.refresh_from_db()
    assert (row.status, row.next_attempt_at) == (EmailStatus.FAILED, None)


@pytest.mark.django_db(transaction=True)
def test_a_retry_handed_over_twice_at_once_is_sent_once(baclofen, flaky_mail, with_worker):
    """The sweep and a redelivered message (or two beat processes) deliver the same due row at the
    same instant, each on its own database connection: one claims it, the other finds it taken."""
    if connection.vendor != "postgresql":
        pytest.skip("row locking needs PostgreSQL")
    order = make_order(product=baclofen)
    row = OutboundEmail.objects.create(
        order=order,
        kind=EmailKind.STAFF_NEW_ORDER,
        recipient=settings.PHARMACY_STAFF_EMAIL,
        dedupe_key="k",
        status=EmailStatus.RETRYING,
        attempts=3,
        next_attempt_at=_now() - timedelta(seconds=1),
        context=order_email_context(order=order, kind=EmailKind.STAFF_NEW_ORDER),
    )
    results, start = [], threading.Barrier(4)

    def deliver():
        start.wait()
        try:
            results.append(email_send(log_id=row.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(results) == [False, False, False, True]
    assert flaky_mail.delivered_ids() == {str(row.pk): 1}
    row.refresh_from_db()
    assert (row.status, row.attempts) == (EmailStatus.SENT, 4)
