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


@shared_task(name="prescriptions.run_autorefills")
def run_autorefills() -> dict:
    """Auto-refill: notices before due dates, then the refills due today (each due date once,
    however many workers run this at the same time)."""
    from .autorefill import autorefills_run

    return autorefills_run()
