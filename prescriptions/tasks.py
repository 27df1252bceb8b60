"""Periodic prescription work (scheduled in ``CELERY_BEAT_SCHEDULE``)."""

from celery import shared_task


@shared_task(name="prescriptions.lapse_expired_prescription_holds")
def lapse_expired_prescription_holds() -> int:
    """Cancel review orders whose 7-day card hold has lapsed, and tell the customers."""
    from .decisions import prescriptions_lapse_expired

    return prescriptions_lapse_expired()


@shared_task(name="prescriptions.send_refill_reminders")
def send_refill_reminders() -> int:
    """One reminder per fill before a prescription supply runs out (opted-in customers)."""
    from .reminders import refill_reminders_send

    return refill_reminders_send()
