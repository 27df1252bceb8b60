"""Periodic payment housekeeping (scheduled in ``CELERY_BEAT_SCHEDULE``), and the hand-off of
recorded Stripe events (``orders.webhooks``) to the worker."""

import logging
from datetime import timedelta

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from . import services
from .models import StripeEvent

logger = logging.getLogger(__name__)

# Events left unprocessed are retried for this long (Stripe itself retries for 3 days).
RETRY_WINDOW = timedelta(days=3)
RETRY_AFTER = timedelta(minutes=2)


@shared_task(name="orders.reconcile_pending_payments")
def reconcile_pending_payments() -> int:
    """Catch up on orders whose webhook never arrived."""
    return services.orders_reconcile_pending()


@shared_task(name="orders.expire_unpaid_orders")
def expire_unpaid_orders() -> int:
    return services.orders_expire_unpaid()


@shared_task(name="orders.sync_payment")
def sync_payment(order_id: str) -> None:
    services.order_sync_payment(order_id=order_id)


@shared_task(name="orders.release_payment_hold")
def release_payment_hold(order_id: str) -> None:
    """Release the card hold of an order canceled before it was paid (replaced, sold out)."""
    services.order_release_payment_hold(order_id=order_id)


@shared_task(name="orders.process_stripe_event", bind=True, max_retries=5)
def process_stripe_event(self, record_id: int) -> None:
    """Act on a recorded Stripe webhook event; on a failure, retry with growing waits.

    5, 15, 45, 135 and 405 s: most failures are a blip (a Stripe read timing out, a lock), and the
    customer's order page and email wait on this; after ~10 minutes ``retry_stripe_events`` (beat)
    keeps trying for three days.

    Run in-process (the demo, ``CELERY_TASK_ALWAYS_EAGER``) a failure is left on the row for
    ``retry_stripe_events`` instead of retrying inside the request.
    """
    try:
        services.stripe_event_process(record_id=record_id)
    except Exception as exc:
        if self.request.is_eager:
            return
        raise self.retry(exc=exc, countdown=5 * 3**self.request.retries) from exc


@shared_task(name="orders.retry_stripe_events")
def retry_stripe_events() -> int:
    """Queue again Stripe events still unprocessed a few minutes after they arrived."""
    return stripe_events_retry()


@shared_task(name="orders.expiring_holds_digest")
def expiring_holds_digest_task() -> int | None:
    """Warn staff, once a day per order, about card holds that lapse within the day."""
    from .emails import expiring_holds_digest

    email = expiring_holds_digest()
    return email.pk if email else None


# --- Handing recorded Stripe events to the worker ----------------------------------------------


def stripe_event_queue(*, record: StripeEvent) -> None:
    """Queue the processing once the row is committed (the worker must be able to read it)."""
    transaction.on_commit(lambda: _enqueue(process_stripe_event, record.pk))


def _enqueue(task, record_id: int) -> None:
    from pharmacy.celery import publish_bounded

    try:  # bounded: Stripe waits on this answer (CELERY_PUBLISH_TIMEOUT, one try)
        publish_bounded(task, record_id)
    except Exception:  # the broker is down: the row stays unprocessed for the sweep
        logger.exception(
            "Could not queue Stripe event %s; the periodic retry will pick it up", record_id
        )


def stripe_events_retry() -> int:
    """Queue again every recent event that is still unprocessed (failed, or its task was lost)."""
    now = timezone.now()
    ids = list(
        StripeEvent.objects.filter(
            processed=False, received_at__gte=now - RETRY_WINDOW, received_at__lte=now - RETRY_AFTER
        ).values_list("pk", flat=True)
    )
    for record_id in ids:
        _enqueue(process_stripe_event, record_id)
    return len(ids)
