"""Refill reminders: one per fill, only to customers who opted in, no medicine in the subject."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.urls import reverse

from notifications.models import EmailKind, OutboundEmail
from notifications.services import email_render
from prescriptions import reminders as refill_reminders
from prescriptions.models import RefillReminderSettings
from tests.prescriptions.refills.support import approve_first_order

pytestmark = pytest.mark.django_db


def reminders():
    return OutboundEmail.objects.filter(kind=EmailKind.REFILL_REMINDER)


def test_one_reminder_per_fill_before_the_supply_runs_out(localstripe, baclofen_90):
    user, order, record = approve_first_order(
        localstripe, baclofen_90, refills=3
    )  # 90 pills, 3 a day: 30 days
    RefillReminderSettings.objects.create(user=user, reminders=True)
    filled = record.last_filled_on
    assert (
        refill_reminders.refill_reminders_send(today=filled + timedelta(days=20)) == 0
    )  # runs out in 10 days
    assert (
        refill_reminders.refill_reminders_send(today=filled + timedelta(days=24)) == 1
    )  # in 6 days
    assert (
        refill_reminders.refill_reminders_send(today=filled + timedelta(days=25)) == 0
    )  # same fill: not again
    assert refill_reminders.refill_reminders_send(today=filled + timedelta(days=29)) == 0
    email = reminders().get()
    assert email.recipient == user.email and email.order == order
    message = email_render(email=email)
    assert "baclofen" not in message.subject.casefold()
    assert "baclofen" not in message.body.casefold()  # the customer did not ask for the name
    assert reverse("refills:detail", args=[record.pk]) in message.body
    assert "3 refills left" in message.body


def test_no_reminder_without_opting_in_and_the_name_only_when_chosen(localstripe, baclofen_90):
    _, _, silent = approve_first_order(localstripe, baclofen_90)
    RefillReminderSettings.objects.create(user=silent.user, reminders=False, name_medicine=True)
    named_user, _, named = approve_first_order(localstripe, baclofen_90)
    RefillReminderSettings.objects.create(user=named_user, reminders=True, name_medicine=True)
    assert (
        refill_reminders.refill_reminders_send(today=named.last_filled_on + timedelta(days=25)) == 1
    )
    email = reminders().get()
    assert email.recipient == named_user.email
    message = email_render(email=email)
    assert "Baclofen 10mg" in message.body and "baclofen" not in message.subject.casefold()


def test_last_refill_used_says_a_new_prescription_is_needed(localstripe, baclofen_90):
    user, _, record = approve_first_order(localstripe, baclofen_90, refills=0)
    RefillReminderSettings.objects.create(user=user, reminders=True)
    refill_reminders.refill_reminders_send(today=record.last_filled_on + timedelta(days=25))
    message = email_render(email=reminders().get())
    assert "new prescription" in message.subject and "new prescription" in message.body


def test_checkout_consent_sets_the_default_and_the_beat_schedules_the_job(localstripe, baclofen_90):
    user, _, _ = approve_first_order(localstripe, baclofen_90)
    refill_reminders.reminder_consent_from_checkout(user=user, agreed=True)
    refill_reminders.reminder_consent_from_checkout(
        user=user, agreed=False
    )  # the first answer stays; settings rule after
    assert RefillReminderSettings.objects.get(user=user).reminders is True
    assert (
        settings.CELERY_BEAT_SCHEDULE["prescriptions-refill-reminders"]["task"]
        == "prescriptions.send_refill_reminders"
    )


def test_customer_turns_reminders_off_in_the_account(client, localstripe, baclofen_90):
    user, _, record = approve_first_order(localstripe, baclofen_90)
    RefillReminderSettings.objects.create(user=user, reminders=True)
    client.force_login(user)
    assert client.post(reverse("refills:reminders"), {}).status_code == 302
    assert (
        refill_reminders.refill_reminders_send(today=record.last_filled_on + timedelta(days=25))
        == 0
    )
    assert not reminders().exists()
