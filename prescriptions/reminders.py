"""Refill reminders: one per fill before a supply runs out, only to customers who opted in.

The REMINDED row is unique per (prescription, fill order), so the periodic job
(``prescriptions.tasks``) reminds once per fill however often it runs.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from notifications.models import EmailKind
from orders.emails import absolute_url, order_email

from .models import PrescriptionOnFile, PrescriptionOnFileEvent, RefillReminderSettings
from .refill_rules import runs_out_on

Event = PrescriptionOnFileEvent.Kind

Event = PrescriptionOnFileEvent.Kind


# --- Reminders ---------------------------------------------------------------------------------


def reminder_settings_for(user) -> RefillReminderSettings | None:
    return RefillReminderSettings.objects.filter(user=user).first()


def reminder_consent_from_checkout(*, user, agreed: bool) -> None:
    """The checkout's box: the first answer sets the default; the account setting rules afterwards."""
    if user is None or not getattr(user, "is_authenticated", False):
        return
    RefillReminderSettings.objects.get_or_create(user=user, defaults={"reminders": bool(agreed)})


def refill_reminders_send(*, today: date | None = None, within_days: int | None = None) -> int:
    """Queue one reminder per fill for supplies running out within N days; returns how many.

    The REMINDED row is unique per (prescription, fill order), so a job run every few hours (or
    twice at once) reminds once per fill; a new fill makes a new reminder possible.
    """
    today = today or timezone.localdate()
    within = (
        within_days
        if within_days is not None
        else int(getattr(settings, "REFILL_REMINDER_DAYS", 7))
    )
    sent = 0
    opted_in = RefillReminderSettings.objects.filter(reminders=True).values_list(
        "user_id", flat=True
    )
    candidates = PrescriptionOnFile.objects.filter(
        user_id__in=opted_in, last_filled_on__isnull=False
    ).select_related("user")
    for record in candidates:
        runs_out = runs_out_on(record)
        if runs_out is None or not (today <= runs_out <= today + timedelta(days=within)):
            continue
        fill = record.events.filter(kind=Event.FILL).order_by("-created_at").first()
        if fill is None or fill.order_id is None:
            continue
        try:
            with transaction.atomic():
                PrescriptionOnFileEvent.objects.create(
                    prescription=record,
                    kind=Event.REMINDED,
                    order_id=fill.order_id,
                    note=f"Supply runs out about {runs_out:%B %-d, %Y}.",
                )
                _queue_reminder(record=record, fill=fill, runs_out=runs_out, today=today)
        except IntegrityError:
            continue  # already reminded for this fill
        sent += 1
    return sent


def _queue_reminder(
    *, record: PrescriptionOnFile, fill: PrescriptionOnFileEvent, runs_out: date, today: date
) -> None:
    """The reminder's own details; ``orders.emails.order_email`` adds the order and queues it."""
    prefs = reminder_settings_for(record.user)
    needs_new = record.refills_left <= 0 or record.expires_on < runs_out
    order_email(
        order=fill.order,
        kind=EmailKind.REFILL_REMINDER,
        event=fill.pk,
        details={
            "runs_out": runs_out.isoformat(),
            "runs_out_text": f"{runs_out:%B %-d, %Y}",
            "needs_new_prescription": needs_new,
            "medicine": f"{record.medicine} {record.strength}"
            if prefs and prefs.name_medicine
            else "",
            "refills_left": record.refills_left,
            "prescription_url": absolute_url(reverse("refills:detail", kwargs={"pk": record.pk})),
        },
    )
