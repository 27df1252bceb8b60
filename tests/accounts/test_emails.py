"""Account emails go through the outbox: written in the transaction, sent after commit, once, retried."""

import pytest
from django.db import transaction
from django.test import RequestFactory
from django.urls import reverse

from accounts.adapter import AccountAdapter
from notifications.models import EmailKind, EmailStatus, OutboundEmail
from notifications.services import email_resend, email_send
from tests.factories import UserFactory

from .conftest import emails_to

pytestmark = pytest.mark.django_db
STRONG = "Plum-orchard-1987-lantern"


def test_reset_and_verification_emails_are_sent_after_commit_exactly_once(
    client, customer, mailoutbox, django_capture_on_commit_callbacks, baclofen
):
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("accounts:password_reset"), {"email": customer.email})
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("accounts:signup"),
            {"email": "fresh@example.com", "password1": STRONG, "password2": STRONG},
        )
    reset = emails_to(customer.email, kind=EmailKind.ACCOUNT_PASSWORD_RESET)[0]
    verification = emails_to("fresh@example.com", kind=EmailKind.ACCOUNT_VERIFICATION)[0]
    assert [m.subject for m in mailoutbox] == [reset.subject, verification.subject]
    assert [m.to for m in mailoutbox] == [[customer.email], ["fresh@example.com"]]
    assert "/accounts/password/reset/key/" in mailoutbox[0].body
    assert "/accounts/confirm-email/" in mailoutbox[1].body
    assert mailoutbox[0].extra_headers["X-Pharmacy-Email-Id"] == str(reset.pk)
    for row in (reset, verification):
        row.refresh_from_db()
        assert row.status == EmailStatus.SENT and row.attempts == 1
        # A redelivered task finds the row sent and sends nothing.
        assert email_send(log_id=row.pk) is False
    assert len(mailoutbox) == 2
    assert not any("baclofen" in m.subject.lower() for m in mailoutbox)


def test_a_rolled_back_request_leaves_no_email(customer):
    request = RequestFactory().post("/")
    with pytest.raises(RuntimeError), transaction.atomic():
        AccountAdapter(request).send_mail(
            "account/email/password_changed",
            customer.email,
            {"ip": "", "user_agent": "", "timestamp": ""},
        )
        assert OutboundEmail.objects.filter(recipient=customer.email).exists()
        raise RuntimeError("the change that caused the email failed")
    assert not OutboundEmail.objects.filter(recipient=customer.email).exists()


def test_with_the_mail_server_down_the_reset_email_is_kept_for_a_resend(
    client, customer, settings, mailoutbox, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = "tests.notifications.failing_backend.FlakyFileBackend"
    settings.EMAIL_FILE_PATH = "/nonexistent-never-written"
    import os

    counter = f"/tmp/h13-flaky-{os.getpid()}"
    os.environ.update(FLAKY_EMAIL_FAILURES="1", FLAKY_EMAIL_COUNTER=counter)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(reverse("accounts:password_reset"), {"email": customer.email})
        # The customer is told what everyone is told; the email is not lost.
        assert response["Location"] == reverse("account_reset_password_done")
        (row,) = emails_to(customer.email, kind=EmailKind.ACCOUNT_PASSWORD_RESET)
        assert row.status == EmailStatus.FAILED and "Simulated outage" in row.last_error
        settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
        with django_capture_on_commit_callbacks(execute=True):
            assert email_resend(email=row)
        row.refresh_from_db()
        assert row.status == EmailStatus.SENT
        assert [m.subject for m in mailoutbox] == ["Reset your Riverside Pharmacy password"]
    finally:
        os.environ.pop("FLAKY_EMAIL_FAILURES", None)
        os.environ.pop("FLAKY_EMAIL_COUNTER", None)
        if os.path.exists(counter):
            os.remove(counter)


def test_staff_do_not_see_live_links_in_the_outbox_admin(client, customer):
    client.post(reverse("accounts:password_reset"), {"email": customer.email})
    (row,) = emails_to(customer.email)
    client.force_login(
        UserFactory(email="admin.viewer@pharmacy.example", is_staff=True, is_superuser=True)
    )
    page = client.get(
        reverse("admin:notifications_outboundemail_change", args=[row.pk])
    ).content.decode()
    assert row.subject in page
    assert "/password/reset/key/" not in page
