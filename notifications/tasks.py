"""Celery wrappers around ``notifications.services``; the outbox row carries all the state.

A delivery task makes one attempt. Retries are not Celery countdowns: the row keeps its next
attempt's time and the beat sweep hands it over then (see ``email_requeue_stale``).
"""

from celery import shared_task
from django.conf import settings

from .models import EmailStatus, OutboundEmail
from .services import RETRYABLE_ERRORS, email_requeue_stale, email_send, failed_emails_digest


class EmailDeliveryFailed(Exception):
    """The email failed for good; the row is marked failed and waits for staff to resend it."""


@shared_task(bind=True, name="notifications.send_email", acks_late=True)
def send_email_task(self, log_id: int) -> bool:
    # A deployment that runs tasks in-process has no beat to try again later: one attempt, then
    # the row is failed and the admin's "Resend" is the way forward.
    final_attempt = bool(getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False))
    try:
        return email_send(log_id=log_id, final_attempt=final_attempt)
    except RETRYABLE_ERRORS as exc:
        if OutboundEmail.objects.filter(pk=log_id, status=EmailStatus.RETRYING).exists():
            return False  # logged by email_send; the sweep tries again at next_attempt_at
        raise EmailDeliveryFailed(f"Email {log_id}: {exc}") from exc


@shared_task(name="notifications.requeue_stale_emails")
def requeue_stale_emails_task() -> int:
    return email_requeue_stale()


@shared_task(name="notifications.failed_emails_digest")
def failed_emails_digest_task() -> bool:
    return failed_emails_digest() is not None
