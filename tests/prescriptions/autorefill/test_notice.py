"""The notice before each refill and its signed links: one email per due date, N days before,
no medicine in the subject; a link changes nothing until its button is pressed, a forged or
stale link changes nothing at all; the new date is never before the too-soon day."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import signing
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from notifications.models import EmailKind, OutboundEmail
from notifications.services import email_render
from prescriptions import autorefill as service
from prescriptions.models import AutoRefill, AutoRefillStatus, PauseReason

from .support import on_file, opt_in

pytestmark = pytest.mark.django_db(transaction=True)


def links(email) -> dict[str, str]:
    body = email_render(email=email).body
    return {
        action: re.search(rf"https?://\S+/auto-refill/notice/\S+/{action}/", body).group(0)
        for action in ("skip", "date", "pause")
    }


def path_of(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


def noticed(localstripe, tier, *, settings, days_ago=20):
    """Opted in; the due date is 3 days away (day 23 of a 30-day supply); the notice goes out."""
    settings.AUTOREFILL_NOTICE_DAYS = 3
    record = on_file(localstripe, tier, filled_days_ago=days_ago)
    autorefill = opt_in(localstripe, record, tier)
    assert service.autorefill_notices_send() == 1
    return record, autorefill, OutboundEmail.objects.get(kind=EmailKind.AUTOREFILL_NOTICE)


def test_one_notice_per_due_date_n_days_before_without_the_medicine(
    localstripe, baclofen_90, settings
):
    settings.AUTOREFILL_NOTICE_DAYS = 3
    record = on_file(localstripe, baclofen_90, filled_days_ago=19)  # due in 4 days: too early
    opt_in(localstripe, record, baclofen_90)
    assert service.autorefill_notices_send() == 0
    record, autorefill, email = noticed(localstripe, baclofen_90, settings=settings)
    assert service.autorefill_notices_send() == 0  # a second run: nothing more
    message = email_render(email=email)
    assert message.subject == f"Your auto-refill is due on {autorefill.next_due_on:%B %-d, %Y}"
    assert "baclofen" not in message.subject.casefold()
    assert "baclofen" not in message.body.casefold()
    autorefill.refresh_from_db()
    assert autorefill.quoted_total in message.body and "ending 4242" in message.body
    assert set(links(email)) == {"skip", "date", "pause"}


def test_skip_link_asks_first_then_skips_once_and_then_is_stale(localstripe, baclofen_90, settings):
    _record, autorefill, email = noticed(localstripe, baclofen_90, settings=settings)
    due = autorefill.next_due_on
    url = path_of(links(email)["skip"])
    anonymous = Client()
    page = anonymous.get(url)
    assert page.status_code == 200 and "no-store" in page["Cache-Control"]
    assert "Baclofen" not in page.content.decode()  # not signed in: no medicine named
    autorefill.refresh_from_db()
    assert autorefill.next_due_on == due  # a GET (a mail scanner) changes nothing
    done = anonymous.post(url)
    assert done.status_code == 200 and "Skipped" in done.content.decode()
    autorefill.refresh_from_db()
    assert autorefill.next_due_on == due + timedelta(days=30)
    assert "This link was for the refill due" in anonymous.get(url).content.decode()
    assert anonymous.post(url).status_code == 400
    autorefill.refresh_from_db()
    assert autorefill.next_due_on == due + timedelta(days=30)  # skipped once only


def test_forged_links_change_nothing(localstripe, baclofen_90, settings):
    _record, autorefill, email = noticed(localstripe, baclofen_90, settings=settings)
    token = signing.dumps({"a": autorefill.pk, "d": "2099-01-01"}, salt="another-salt")
    url = reverse("autorefill:notice", kwargs={"token": token, "action": "pause"})
    assert Client().post(url).status_code == 404
    bad_action = path_of(links(email)["skip"]).replace("/skip/", "/stop/")
    assert Client().post(bad_action).status_code == 404
    autorefill.refresh_from_db()
    assert autorefill.status == AutoRefillStatus.ACTIVE


def test_date_link_refuses_a_day_before_the_too_soon_day_and_moves_later(
    localstripe, baclofen_90, settings
):
    _record, autorefill, email = noticed(localstripe, baclofen_90, settings=settings)
    due = autorefill.next_due_on
    url = path_of(links(email)["date"])
    refused = Client().post(url, {"new_date": (due - timedelta(days=1)).isoformat()})
    assert refused.status_code == 400
    assert f"The earliest date for this refill is {due:%B %-d, %Y}" in refused.content.decode()
    moved = Client().post(url, {"new_date": (due + timedelta(days=5)).isoformat()})
    assert moved.status_code == 200
    autorefill.refresh_from_db()
    assert autorefill.next_due_on == due + timedelta(days=5)
    # The notice for the new date goes out again, 3 days before it.
    assert service.autorefill_notices_send(today=due + timedelta(days=1)) == 0
    assert service.autorefill_notices_send(today=due + timedelta(days=2)) == 1


def test_pause_link_pauses_and_the_owner_sees_the_medicine(localstripe, baclofen_90, settings):
    record, autorefill, email = noticed(localstripe, baclofen_90, settings=settings)
    client = Client()
    client.force_login(record.user)
    url = path_of(links(email)["pause"])
    assert "Baclofen 10mg" in client.get(url).content.decode()
    client.post(url)
    autorefill.refresh_from_db()
    assert (autorefill.status, autorefill.pause_reason) == (
        AutoRefillStatus.PAUSED,
        PauseReason.PATIENT,
    )
    assert service.autorefills_place_due(today=autorefill.next_due_on) == 0


def test_account_page_is_private_and_never_cached(localstripe, baclofen_90):
    record = on_file(localstripe, baclofen_90, filled_days_ago=10)
    url = reverse("autorefill:manage", kwargs={"pk": record.pk})
    assert Client().get(url).status_code == 302  # sign in first
    stranger = Client()
    stranger.force_login(on_file(localstripe, baclofen_90).user)
    assert stranger.get(url).status_code == 404
    owner = Client()
    owner.force_login(record.user)
    page = owner.get(url)
    assert page.status_code == 200 and "no-store" in page["Cache-Control"]
    assert "Refill automatically" in page.content.decode()
    # A bad form is refused with its reasons, never a 500.
    bad = owner.post(reverse("autorefill:start", kwargs={"pk": record.pk}), {"tier_id": "x"})
    assert bad.status_code == 400
    wrong_zip = owner.post(
        reverse("autorefill:start", kwargs={"pk": record.pk}),
        {
            "tier_id": baclofen_90.pk,
            "name": "Jane Doe",
            "line1": "100 River Street",
            "city": "Albany",
            "state": "NY",
            "zip_code": "90210",
            "shipping_method": "standard",
        },
    )
    assert wrong_zip.status_code == 400 and "90210" in wrong_zip.content.decode()
    assert not AutoRefill.objects.exists()


def test_a_consent_ending_before_the_due_date_pauses_at_notice_time(
    localstripe, baclofen_90, settings
):
    settings.AUTOREFILL_NOTICE_DAYS = 3
    record = on_file(localstripe, baclofen_90, filled_days_ago=20)
    autorefill = opt_in(localstripe, record, baclofen_90)
    AutoRefill.objects.filter(pk=autorefill.pk).update(
        consent_until=autorefill.next_due_on - timedelta(days=1)
    )
    assert service.autorefill_notices_send() == 0
    autorefill.refresh_from_db()
    assert autorefill.pause_reason == PauseReason.CONSENT_EXPIRED
    paused = email_render(email=OutboundEmail.objects.get(kind=EmailKind.AUTOREFILL_PAUSED))
    assert "consent once a year" in paused.body
    assert not OutboundEmail.objects.filter(kind=EmailKind.AUTOREFILL_NOTICE).exists()


def test_paused_for_a_price_change_resumes_only_at_the_price_shown(localstripe, baclofen_90):
    from djmoney.money import Money

    from catalog.models import PackageTier

    record = on_file(localstripe, baclofen_90, filled_days_ago=25)
    autorefill = opt_in(localstripe, record, baclofen_90)
    AutoRefill.objects.filter(pk=autorefill.pk).update(next_due_on=timezone.localdate())
    PackageTier.objects.filter(pk=baclofen_90.pk).update(price=Money("99.00", "USD"))
    assert service.autorefills_place_due() == 0
    autorefill.refresh_from_db()
    assert autorefill.pause_reason == PauseReason.PRICE_CHANGED
    client = Client()
    client.force_login(record.user)
    page = client.get(reverse("autorefill:manage", args=[record.pk])).content.decode()
    shown = re.search(r'name="shown_total" value="([^"]+)"', page).group(1)
    stale = client.post(
        reverse("autorefill:change", args=[record.pk, "resume"]), {"shown_total": "$1.00"}
    )
    assert stale.status_code == 400
    client.post(reverse("autorefill:change", args=[record.pk, "resume"]), {"shown_total": shown})
    autorefill.refresh_from_db()
    assert autorefill.status == AutoRefillStatus.ACTIVE and autorefill.quoted_total == shown
    assert service.autorefills_place_due() == 1
