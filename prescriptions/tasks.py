"""Periodic prescription work (scheduled in ``CELERY_BEAT_SCHEDULE``)."""

from celery import shared_task


@shared_task(name="prescriptions.run_autorefills")
def run_autorefills() -> dict:
    """Auto-refill: notices before due dates, then the refills due today (each due date once,
    however many workers run this at the same time)."""
    from .autorefill import autorefills_run

    return autorefills_run()
