"""Celery wrappers around ``notifications.services``; the outbox row carries all the state."""
from celery import shared_task

from .services import RETRYABLE_ERRORS, email_requeue_stale, email_send

MAX_RETRIES = 5


class EmailDeliveryFailed(Exception):
    """The last attempt failed; the row is marked failed and waits for staff to resend it."""


@shared_task(
    bind=True,
    name="notifications.send_email",
    autoretry_for=RETRYABLE_ERRORS,
    dont_autoretry_for=(EmailDeliveryFailed,),
    retry_backoff=True,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=MAX_RETRIES,
    acks_late=True,
)
def send_email_task(self, log_id: int) -> bool:
    # In-process (eager) mode has no worker to retry later and must not spin inside a web
    # request: one attempt, then the row is failed and the admin's "Resend" is the way forward.
    final_attempt = self.request.is_eager or self.request.retries >= self.max_retries
    try:
        return email_send(log_id=log_id, final_attempt=final_attempt)
    except RETRYABLE_ERRORS as exc:
        if final_attempt:
            raise EmailDeliveryFailed(f"Email {log_id}: {exc}") from exc
        raise


@shared_task(name="notifications.requeue_stale_emails")
def requeue_stale_emails_task() -> int:
    return email_requeue_stale()

