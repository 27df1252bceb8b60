"""Delivery: emails leave only after commit, exactly once, and failures are retried then parked."""

import smtplib
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from notifications.models import EmailKind, EmailStatus, OutboundEmail
from notifications.services import email_requeue_stale, email_send
from notifications.tasks import EmailDeliveryFailed, send_email_task
from orders.emails import order_email, order_email_context
from tests.factories import UserFactory
from tests.notifications.conftest import make_order

# --- After commit, and only then --------------------------------------------------------------


def test_nothing_is_sent_before_the_transaction_commits(
    order, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        row = order_email(order=order, kind=EmailKind.ORDER_RECEIVED)
    assert row.status == EmailStatus.QUEUED
    assert mailoutbox == []
    assert len(callbacks) == 1

    callbacks[0]()
    assert len(mailoutbox) == 1
    row.refresh_from_db()
    assert row.status == EmailStatus.SENT and row.sent_at is not None


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_leaves_no_row_and_sends_nothing(baclofen, mailoutbox):
    order = make_order(product=baclofen)

    with pytest.raises(RuntimeError), transaction.atomic():
        order_email(order=order, kind=EmailKind.ORDER_RECEIVED)
        raise RuntimeError("payment bookkeeping failed")

    assert not OutboundEmail.objects.exists()
    assert mailoutbox == []

    # The same call in a transaction that commits does send (in-process, as in the demo).
    with transaction.atomic():
        order_email(order=order, kind=EmailKind.ORDER_RECEIVED)
    assert len(mailoutbox) == 1
    assert OutboundEmail.objects.get().status == EmailStatus.SENT


# --- Exactly once -----------------------------------------------------------------------------


def test_queuing_twice_sends_once(order, mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        first = order_email(order=order, kind=EmailKind.ORDER_RECEIVED)
        second = order_email(order=order, kind=EmailKind.ORDER_RECEIVED)
    assert first.pk == second.pk
    assert len(callbacks) == 1
    with django_capture_on_commit_callbacks(execute=True):
        order_email(order=order, kind=EmailKind.ORDER_RECEIVED)  # e.g. a webhook redelivered later
    assert len(mailoutbox) == 1
    assert OutboundEmail.objects.count() == 1


def test_running_the_task_again_on_a_sent_email_sends_nothing(
    order, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        row = order_email(order=order, kind=EmailKind.SHIPPED, details={"carrier": "UPS"})
    assert send_email_task.apply(args=[row.pk]).get() is False
    assert email_send(log_id=row.pk) is False
    assert len(mailoutbox) == 1
    row.refresh_from_db()
    assert row.attempts == 1


def test_repeatable_kinds_send_once_per_event(
    order, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        order_email(
            order=order, kind=EmailKind.INFORMATION_REQUESTED, details={"message": "A?"}, event=1
        )
        order_email(
            order=order, kind=EmailKind.INFORMATION_REQUESTED, details={"message": "A?"}, event=1
        )
        order_email(
            order=order, kind=EmailKind.INFORMATION_REQUESTED, details={"message": "B?"}, event=2
        )
    assert sorted("A?" in m.body for m in mailoutbox) == [False, True]
    with pytest.raises(ValueError, match="pass the event"):
        order_email(order=order, kind=EmailKind.INFORMATION_REQUESTED)


def test_an_email_being_sent_by_another_worker_is_not_sent_twice(order, mailoutbox):
    row = OutboundEmail.objects.create(
        order=order,
        kind=EmailKind.ORDER_RECEIVED,
        recipient=order.email,
        dedupe_key="k",
        status=EmailStatus.SENDING,
    )
    assert email_send(log_id=row.pk) is False
    assert mailoutbox == []
    # ...unless that worker died: past the task's hard time limit the row may be claimed again.
    OutboundEmail.objects.filter(pk=row.pk).update(
        updated_at=timezone.now() - timedelta(minutes=10)
    )
    assert email_send(log_id=row.pk) is True
    assert len(mailoutbox) == 1


# --- Failures ---------------------------------------------------------------------------------


def test_a_retryable_failure_waits_a_minute_with_the_error(order, flaky_mail):
    flaky_mail(1)
    row = OutboundEmail.objects.create(
        order=order, kind=EmailKind.ORDER_RECEIVED, recipient=order.email, dedupe_key="k"
    )

    with pytest.raises(smtplib.SMTPServerDisconnected):
        email_send(log_id=row.pk)
    row.refresh_from_db()
    assert (row.status, row.attempts) == (EmailStatus.RETRYING, 1)
    assert "Simulated outage" in row.last_error
    assert timedelta(seconds=60) <= row.next_attempt_at - row.updated_at <= timedelta(seconds=75)
    assert (
        email_send(log_id=row.pk) is False
    )  # not due yet: a duplicate message does not jump the wait
    assert flaky_mail.delivered() == 0

    OutboundEmail.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now())
    assert email_send(log_id=row.pk) is True  # the retry, once due
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error, row.next_attempt_at) == (
        EmailStatus.SENT,
        2,
        "",
        None,
    )
    assert flaky_mail.delivered() == 1


def test_the_last_attempt_marks_the_email_failed(order, flaky_mail):
    flaky_mail(99)
    row = OutboundEmail.objects.create(
        order=order, kind=EmailKind.ORDER_RECEIVED, recipient=order.email, dedupe_key="k"
    )
    with pytest.raises(smtplib.SMTPServerDisconnected):
        email_send(log_id=row.pk, final_attempt=True)
    row.refresh_from_db()
    assert (row.status, row.next_attempt_at) == (EmailStatus.FAILED, None)
    assert email_send(log_id=row.pk) is False  # a failed email waits for staff; nothing retries it


def test_in_process_mode_tries_once_then_parks_the_email_as_failed(order, flaky_mail, settings):
    """The zero-setup demo has no worker and no beat: nothing would try again later."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    flaky_mail(99)
    result = send_email_task.apply(
        args=[
            OutboundEmail.objects.create(
                order=order, kind=EmailKind.ORDER_RECEIVED, recipient=order.email, dedupe_key="k"
            ).pk
        ]
    )
    assert result.failed()
    assert isinstance(result.result, EmailDeliveryFailed)
    row = OutboundEmail.objects.get()
    assert (row.status, row.attempts) == (EmailStatus.FAILED, 1)
    assert flaky_mail.attempts() == 1


def test_with_a_worker_the_task_leaves_a_failed_send_to_the_sweep(order, flaky_mail, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False  # a worker and beat run
    flaky_mail(99)
    row = OutboundEmail.objects.create(
        order=order, kind=EmailKind.ORDER_RECEIVED, recipient=order.email, dedupe_key="k"
    )
    result = send_email_task.apply(args=[row.pk])
    assert result.successful() and result.result is False
    row.refresh_from_db()
    assert (row.status, row.attempts) == (EmailStatus.RETRYING, 1)


def test_stale_queued_emails_are_handed_to_celery_again(
    order, mailoutbox, django_capture_on_commit_callbacks
):
    """The broker was down when the order committed: the periodic sweep sends the email later."""
    row = OutboundEmail.objects.create(
        order=order,
        kind=EmailKind.ORDER_RECEIVED,
        recipient=order.email,
        dedupe_key="k",
        context=order_email_context(order=order, kind=EmailKind.ORDER_RECEIVED),
    )
    fresh = OutboundEmail.objects.create(
        order=order, kind=EmailKind.PAYMENT_CAPTURED, recipient=order.email, dedupe_key="k2"
    )
    OutboundEmail.objects.filter(pk=row.pk).update(
        updated_at=timezone.now() - timedelta(minutes=30)
    )

    with django_capture_on_commit_callbacks(execute=True):
        assert email_requeue_stale() == 1
    assert [m.subject for m in mailoutbox] == [f"We've received your order {order.number}"]
    fresh.refresh_from_db()
    assert fresh.status == EmailStatus.QUEUED  # recent: may still be on its way to a worker


def test_an_email_never_handed_over_goes_within_minutes_and_a_retry_when_due(
    order, mailoutbox, django_capture_on_commit_callbacks
):
    """A broker blip at commit: the row was never tried. Two minutes later the sweep (every minute)
    hands it over; a row waiting to retry goes when its time comes, not before."""
    never_tried = OutboundEmail.objects.create(
        order=order,
        kind=EmailKind.ORDER_RECEIVED,
        recipient=order.email,
        dedupe_key="k",
        context=order_email_context(order=order, kind=EmailKind.ORDER_RECEIVED),
    )
    now = timezone.now()
    waiting_retry = OutboundEmail.objects.create(
        order=order,
        kind=EmailKind.PAYMENT_CAPTURED,
        recipient=order.email,
        dedupe_key="k2",
        attempts=1,
        status=EmailStatus.RETRYING,
        next_attempt_at=now + timedelta(seconds=30),
        context=order_email_context(order=order, kind=EmailKind.PAYMENT_CAPTURED),
    )
    OutboundEmail.objects.filter(pk__in=[never_tried.pk, waiting_retry.pk]).update(
        updated_at=now - timedelta(minutes=2)
    )

    with django_capture_on_commit_callbacks(execute=True):
        assert email_requeue_stale() == 1
    assert [m.subject for m in mailoutbox] == [f"We've received your order {order.number}"]
    waiting_retry.refresh_from_db()
    assert (waiting_retry.status, waiting_retry.attempts) == (EmailStatus.RETRYING, 1)
    assert settings.CELERY_BEAT_SCHEDULE["notifications-requeue-stale-emails"]["schedule"] <= 60

    OutboundEmail.objects.filter(pk=waiting_retry.pk).update(next_attempt_at=now)
    with django_capture_on_commit_callbacks(execute=True):
        assert email_requeue_stale() == 1
    assert [m.subject for m in mailoutbox][1] == f"Receipt for your order {order.number}"


# --- Admin --------------------------------------------------------------------------------------


@pytest.fixture
def sent_and_failed(order, django_capture_on_commit_callbacks, flaky_mail):
    """One email delivered, one that failed for good (the mail server went down in between)."""
    with django_capture_on_commit_callbacks(execute=True):
        sent = order_email(order=order, kind=EmailKind.ORDER_RECEIVED)
    flaky_mail(99)
    with django_capture_on_commit_callbacks(execute=True):
        failed = order_email(order=order, kind=EmailKind.PAYMENT_CAPTURED)
    sent.refresh_from_db()
    failed.refresh_from_db()
    assert (sent.status, failed.status) == (EmailStatus.SENT, EmailStatus.FAILED)
    assert flaky_mail.delivered() == 1
    return sent, failed


def test_staff_can_resend_sent_and_failed_emails(
    admin_client, settings, mailoutbox, sent_and_failed, django_capture_on_commit_callbacks
):
    sent, failed = sent_and_failed
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"  # the server is back
    changelist = reverse("admin:notifications_outboundemail_changelist")

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            changelist, {"action": "resend", "_selected_action": [sent.pk, failed.pk]}, follow=True
        )

    assert response.status_code == 200
    assert "2 email(s) queued to be sent again." in response.content.decode()
    assert sorted(m.subject for m in mailoutbox) == [
        f"Receipt for your order {sent.order.number}",
        f"We've received your order {sent.order.number}",
    ]
    for row in (sent, failed):
        row.refresh_from_db()
        assert row.status == EmailStatus.SENT
    assert (sent.attempts, failed.attempts) == (1, 1)  # a resend starts a fresh set of tries
    assert LogEntry.objects.filter(change_message="Resend requested.").count() == 2


def test_resend_skips_an_email_that_is_already_on_its_way(
    admin_client, order, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        queued = order_email(order=order, kind=EmailKind.ORDER_RECEIVED)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:notifications_outboundemail_changelist"),
            {"action": "resend", "_selected_action": [queued.pk]},
            follow=True,
        )
    assert "1 email(s) skipped" in response.content.decode()
    assert mailoutbox == []


def test_the_outbox_is_read_only_and_resend_needs_the_resend_permission(
    client, order, django_capture_on_commit_callbacks
):
    from django.contrib.auth.models import Permission

    with django_capture_on_commit_callbacks(execute=True):
        row = order_email(order=order, kind=EmailKind.ORDER_RECEIVED)
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_outboundemail"))
    client.force_login(viewer)

    changelist = client.get(
        reverse("admin:notifications_outboundemail_changelist") + "?status__exact=sent"
    )
    assert changelist.status_code == 200
    assert str(order.number) in changelist.content.decode()
    assert 'value="resend"' not in changelist.content.decode()

    change = client.get(reverse("admin:notifications_outboundemail_change", args=[row.pk]))
    assert change.status_code == 200
    assert 'name="_save"' not in change.content.decode()
    assert (
        client.post(
            reverse("admin:notifications_outboundemail_change", args=[row.pk]),
            {"recipient": "x@example.com"},
        ).status_code
        == 403
    )
    assert client.get(reverse("admin:notifications_outboundemail_add")).status_code == 403

    viewer.user_permissions.add(Permission.objects.get(codename="change_outboundemail"))
    changelist = client.get(reverse("admin:notifications_outboundemail_changelist"))
    assert 'value="resend"' not in changelist.content.decode()  # changing is not resending
    viewer.user_permissions.add(Permission.objects.get(codename="resend_email"))
    viewer = type(viewer).objects.get(pk=viewer.pk)  # drop the cached permissions
    changelist = client.get(reverse("admin:notifications_outboundemail_changelist"))
    assert 'value="resend"' in changelist.content.decode()


def test_outbox_admin_list_query_count_does_not_grow_with_emails(
    admin_client, baclofen, django_assert_max_num_queries
):
    changelist = reverse("admin:notifications_outboundemail_changelist")

    def add_emails(n):
        for _ in range(n):
            order = make_order(product=baclofen, lines=1)
            OutboundEmail.objects.create(
                order=order,
                kind=EmailKind.ORDER_RECEIVED,
                recipient=order.email,
                dedupe_key=f"{order.pk}:r",
            )

    add_emails(2)
    with django_assert_max_num_queries(12) as few:
        assert admin_client.get(changelist).status_code == 200
    add_emails(10)
    with django_assert_max_num_queries(12) as many:
        response = admin_client.get(changelist)
    assert "12 outbound emails" in response.content.decode()
    assert len(many.captured_queries) == len(few.captured_queries)
    print(f"outbox changelist: {len(many.captured_queries)} queries")


@pytest.mark.parametrize("kind", [EmailKind.ORDER_RECEIVED, EmailKind.STAFF_NEW_ORDER])
@pytest.mark.parametrize("payment_status", ["pending", "failed", "canceled"])
def test_no_order_confirmation_before_the_card_is_authorised(
    kind, payment_status, baclofen, mailoutbox, django_capture_on_commit_callbacks
):
    order = make_order(product=baclofen, payment_status=payment_status, status="pending_payment")
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(ValueError, match="once the card is authorised"),
    ):
        order_email(order=order, kind=kind)
    assert mailoutbox == []
    assert not OutboundEmail.objects.exists()
