"""Periodic payment housekeeping (scheduled in ``CELERY_BEAT_SCHEDULE``)."""

from celery import shared_task

from . import services, webhooks


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


@shared_task(name="orders.lapse_expired_prescription_holds")
def lapse_expired_prescription_holds() -> int:
    """Cancel review orders whose 7-day card hold has lapsed, and tell the customers."""
    from .prescription_decisions import prescriptions_lapse_expired

    return prescriptions_lapse_expired()


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
        webhooks.stripe_event_process(record_id=record_id)
    except Exception as exc:
        if self.request.is_eager:
            return
        raise self.retry(exc=exc, countdown=5 * 3**self.request.retries) from exc


@shared_task(name="orders.retry_stripe_events")
def retry_stripe_events() -> int:
    """Queue again Stripe events still unprocessed a few minutes after they arrived."""
    return webhooks.stripe_events_retry()


@shared_task(name="orders.send_refill_reminders")
def send_refill_reminders() -> int:
    """Issue #16: one reminder per fill before a prescription supply runs out (opted-in customers)."""
    from .prescription_records import refill_reminders_send

    return refill_reminders_send()


@shared_task(name="orders.expiring_holds_digest")
def expiring_holds_digest_task() -> int | None:
    """Warn staff, once a day per order, about card holds that lapse within the day."""
    from .emails import expiring_holds_digest

    email = expiring_holds_digest()
    return email.pk if email else None
