"""Periodic payment housekeeping (scheduled in ``CELERY_BEAT_SCHEDULE``)."""
from celery import shared_task

from . import services


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
    from .prescriptions import prescriptions_lapse_expired

    return prescriptions_lapse_expired()


@shared_task(name="orders.send_refill_reminders")
def send_refill_reminders() -> int:
    """Issue #16: one reminder per fill before a prescription supply runs out (opted-in customers)."""
    from .prescription_records import refill_reminders_send

    return refill_reminders_send()
