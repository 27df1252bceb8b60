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


@shared_task(name="orders.release_payment_hold")
def release_payment_hold(order_id: str) -> None:
    """Release the card hold of an order canceled before it was paid (replaced, sold out)."""
    services.order_release_payment_hold(order_id=order_id)
