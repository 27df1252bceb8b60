"""Attachments in the generic outbox: kept by reference, made when the email is sent, so a retry
hours later attaches the document as it is then, and the row and its error never hold the file."""

import smtplib
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from notifications.models import EmailKind, EmailStatus, OutboundEmail
from notifications.services import email_queue, email_requeue_stale, email_send

pytestmark = pytest.mark.django_db

#: What the fake renderer makes, by the id it is given; a test changes it between tries.
DOCUMENTS: dict[str, bytes | Exception | None] = {}


def fake_renderer(*, doc_id: str):
    made = DOCUMENTS[doc_id]
    if isinstance(made, Exception):
        raise made
    if made is None:
        return None
    return f"document-{doc_id}.pdf", made, "application/pdf"


@pytest.fixture(autouse=True)
def renderers(settings):
    settings.EMAIL_ATTACHMENT_RENDERERS = {
        "test_doc": "tests.notifications.test_attachments.fake_renderer"
    }
    DOCUMENTS.clear()


def queue(doc_id: str, *, renderer: str = "test_doc") -> OutboundEmail:
    return email_queue(
        kind=EmailKind.ACCOUNT_NOTICE,
        to="alex@example.com",
        subject="Your document",
        context={"text": "Attached.", "html": ""},
        dedupe_key=f"doc:{doc_id}",
        attachments=[{"renderer": renderer, "args": {"doc_id": doc_id}}],
    )


def test_the_row_keeps_the_reference_and_the_email_carries_the_file_made_at_send_time(
    mailoutbox, django_capture_on_commit_callbacks
):
    DOCUMENTS["7"] = b"%PDF-1.7 first"
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        row = queue("7")
    assert row.attachments == [{"renderer": "test_doc", "args": {"doc_id": "7"}}]
    DOCUMENTS["7"] = b"%PDF-1.7 as it is when sent"
    for callback in callbacks:
        callback()
    [message] = mailoutbox
    assert message.attachments == [
        ("document-7.pdf", b"%PDF-1.7 as it is when sent", "application/pdf")
    ]
    row.refresh_from_db()
    assert row.status == EmailStatus.SENT and b"PDF" not in str(row.context).encode()


def test_an_unknown_renderer_is_refused_when_queued():
    with pytest.raises(ValueError, match="Unknown attachment renderer 'nope'"):
        queue("1", renderer="nope")
    assert not OutboundEmail.objects.exists()


def test_nothing_to_attach_sends_the_email_without_a_file(
    mailoutbox, django_capture_on_commit_callbacks
):
    DOCUMENTS["2"] = None
    with django_capture_on_commit_callbacks(execute=True):
        queue("2")
    [message] = mailoutbox
    assert message.attachments == []


def test_a_failing_renderer_fails_the_email_with_an_error_that_quotes_nothing(
    mailoutbox, caplog, django_capture_on_commit_callbacks
):
    DOCUMENTS["3"] = RuntimeError("Baclofen 10mg for Jane Doe")
    with django_capture_on_commit_callbacks(execute=True):
        row = queue("3")
    row.refresh_from_db()
    assert row.status == EmailStatus.FAILED and mailoutbox == []
    assert row.last_error == (
        "AttachmentError: The test_doc attachment could not be made (RuntimeError)."
    )
    assert "Baclofen" not in caplog.text and "Jane Doe" not in caplog.text


def test_a_retry_hours_later_still_attaches_the_document(mailoutbox, monkeypatch):
    """The mail server is down for hours; the reference survives, the file is made on the try
    that succeeds."""
    DOCUMENTS["4"] = b"%PDF-1.7 receipt"
    row = queue("4")  # handed to Celery on commit: here the test sends it by hand

    def server_down(self, *args, **kwargs):
        raise smtplib.SMTPServerDisconnected("down")

    monkeypatch.setattr("django.core.mail.message.EmailMessage.send", server_down)
    with pytest.raises(smtplib.SMTPServerDisconnected):
        email_send(log_id=row.pk)
    row.refresh_from_db()
    assert row.status == EmailStatus.RETRYING and row.attachments
    monkeypatch.undo()
    with time_machine.travel(timezone.now() + timedelta(hours=3)):
        assert email_requeue_stale() == 1
        assert email_send(log_id=row.pk)
    [message] = mailoutbox
    assert message.attachments == [("document-4.pdf", b"%PDF-1.7 receipt", "application/pdf")]
