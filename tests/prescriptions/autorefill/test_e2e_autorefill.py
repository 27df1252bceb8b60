"""Done-when of issue 25's auto-refill, in Chromium against localstripe: opt in with a saved
card → notice → skip once → the next due date places an order off-session → the pharmacist
approves → captured; a declined saved card pauses auto-refill and tells the patient.

The clock cannot be moved in the shared database, so time passing is the last fill's date
moved back (as the refill tests do). With ``AUTOREFILL_SCREENSHOTS=<dir>`` the opt-in, consent
and notice pages are saved there at 375 and 1280 px."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from notifications.models import EmailKind, OutboundEmail
from notifications.services import email_render
from orders.state import OrderStatus, PaymentStatus
from prescriptions import autorefill as service
from prescriptions.models import (
    AutoRefill,
    AutoRefillRun,
    AutoRefillStatus,
    PauseReason,
    PrescriptionOnFile,
)
from tests.e2e.test_prescription import shop, sign_in_as  # noqa: F401  (the live shop fixture)
from tests.localstripe import CARD_DECLINED, CARD_OK
from tests.prescriptions.prescription_support import captured_minor, make_pharmacist

from .support import on_file, set_last_fill

pytestmark = pytest.mark.e2e
SHOTS = os.environ.get("AUTOREFILL_SCREENSHOTS", "")


def shoot(page, name: str) -> None:
    if not SHOTS:
        return
    Path(SHOTS).mkdir(parents=True, exist_ok=True)
    for width in (375, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=f"{SHOTS}/{name}-{width}.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def opt_in_in_the_browser(page, shop, record, card: str) -> AutoRefill:
    page.goto(shop.url + reverse("refills:detail", args=[record.pk]))
    page.get_by_role("link", name="Set up auto-refill").click()
    page.get_by_label("90 pills").check()
    page.get_by_label("Full name").fill("Jane Doe")
    page.get_by_label("Address line 1").fill("100 River Street")
    page.get_by_label("City").fill("Albany")
    page.get_by_label("State").select_option("NY")
    page.get_by_label("ZIP code").fill("12207")
    shoot(page, "autorefill-opt-in")
    page.get_by_role("button", name="Continue: price, terms and card").click()
    page.wait_for_url(re.compile(r"/auto-refill/consent/$"))
    terms = page.locator("#consent-terms").inner_text()
    assert "Baclofen 10mg, one pack of 90" in terms and "one year" in terms
    autorefill = AutoRefill.objects.get(prescription=record)
    assert autorefill.quoted_total in page.locator("#quoted-total").inner_text()
    card_box = page.locator("#card-element")
    card_box.get_by_placeholder("number").fill(card)
    card_box.get_by_placeholder("exp_month").fill("12")
    card_box.get_by_placeholder("exp_year").fill("34")
    card_box.get_by_placeholder("cvc").fill("123")
    card_box.get_by_placeholder("postal_code").fill("12207")
    shoot(page, "autorefill-consent")
    # Without the box ticked, nothing is saved.
    page.get_by_role("button", name="Save card and turn on auto-refill").click()
    assert "agree to the terms" in page.locator("#error-agree").inner_text()
    page.get_by_label(re.compile("I agree to these terms")).check()
    page.get_by_role("button", name="Save card and turn on auto-refill").click()
    page.wait_for_url(re.compile(r"/auto-refill/$"))
    assert "Auto-refill is on" in page.locator("#autorefill-status").inner_text()
    autorefill.refresh_from_db()
    return autorefill


def test_opt_in_notice_skip_off_session_order_approved_and_captured(
    shop, page, baclofen_90, localstripe
):
    record = on_file(localstripe, baclofen_90, filled_days_ago=20)  # due in 3 days
    patient = record.user
    sign_in_as(page, shop, patient)
    autorefill = opt_in_in_the_browser(page, shop, record, CARD_OK)
    first_due = timezone.localdate() + timedelta(days=3)
    assert autorefill.next_due_on == first_due
    assert "Visa ending 4242" in page.locator("#saved-card").inner_text()
    shoot(page, "autorefill-manage")

    # The notice, 3 days before: no medicine in the subject; its skip link, opened in the browser.
    assert service.autorefills_run() == {"notices": 1, "placed": 0}
    message = email_render(email=OutboundEmail.objects.get(kind=EmailKind.AUTOREFILL_NOTICE))
    assert "baclofen" not in message.subject.casefold()
    skip = re.search(r"https?://\S+/skip/", message.body).group(0)
    page.goto(shop.url + re.sub(r"^https?://[^/]+", "", skip))
    shoot(page, "autorefill-notice-skip")
    for action in ("date", "pause"):
        page.goto(shop.url + re.sub(r"^https?://[^/]+", "", skip).replace("/skip/", f"/{action}/"))
        shoot(page, f"autorefill-notice-{action}")
    page.goto(shop.url + re.sub(r"^https?://[^/]+", "", skip))
    page.get_by_role("button", name=re.compile("Skip the refill of")).click()
    assert "Skipped" in page.locator("#notice-done").inner_text()
    shoot(page, "autorefill-notice-done")
    autorefill.refresh_from_db()
    assert autorefill.next_due_on == first_due + timedelta(days=30)
    # The skipped date passes with no order.
    assert service.autorefills_place_due(today=first_due) == 0

    # A month on (the skipped supply used): the next due date comes and the order is placed
    # off-session, held on the saved card, in the pharmacist's refill queue.
    set_last_fill(record, days_ago=53)
    AutoRefill.objects.filter(pk=autorefill.pk).update(next_due_on=timezone.localdate())
    assert service.autorefills_run()["placed"] == 1
    order = AutoRefillRun.objects.get(autorefill=autorefill).order
    assert (order.status, order.payment_status) == (
        OrderStatus.AWAITING_REVIEW,
        PaymentStatus.AUTHORIZED,
    )
    intent = localstripe.payment_intent(order.stripe_payment_intent_id)
    assert intent["status"] == "requires_capture"
    assert intent["payment_method"] == autorefill.stripe_payment_method_id
    assert intent["metadata"] == {"order_id": str(order.id), "order_number": str(order.number)}

    staff = page.context.browser.new_page()
    sign_in_as(staff, shop, make_pharmacist())
    staff.goto(shop.url + reverse("prescriptions:review_queue"))
    card = staff.locator(f"#refill-{order.number}")
    assert "Checks pass" in card.inner_text() and "Auto-refill" in card.inner_text()
    shoot(staff, "autorefill-refill-queue")
    staff.get_by_role("link", name=f"Review refill {order.number}").click()
    staff.get_by_role("button", name=re.compile("Approve refill")).click()
    staff.wait_for_url(re.compile(r"/staff/review/$"))
    order.refresh_from_db()
    assert (order.status, order.payment_status) == (
        OrderStatus.READY_TO_SHIP,
        PaymentStatus.CAPTURED,
    )
    assert captured_minor(localstripe, order.stripe_payment_intent_id) == int(
        order.total.amount * 100
    )
    assert PrescriptionOnFile.objects.get(pk=record.pk).refills_left == 2
    page.goto(shop.url + reverse("autorefill:manage", args=[record.pk]))
    assert f"order {order.number}" in page.locator("#autorefill-orders").inner_text()
    staff.close()


def test_a_declined_saved_card_pauses_and_notifies(shop, page, baclofen_90, localstripe):
    record = on_file(localstripe, baclofen_90, filled_days_ago=25)  # due today
    sign_in_as(page, shop, record.user)
    autorefill = opt_in_in_the_browser(page, shop, record, CARD_DECLINED)
    assert autorefill.next_due_on == timezone.localdate()
    assert service.autorefills_run()["placed"] == 0
    autorefill.refresh_from_db()
    assert (autorefill.status, autorefill.pause_reason) == (
        AutoRefillStatus.PAUSED,
        PauseReason.DECLINED,
    )
    message = email_render(email=OutboundEmail.objects.get(kind=EmailKind.AUTOREFILL_PAUSED))
    assert message.subject == "Your auto-refill is paused" and "declined" in message.body
    page.goto(shop.url + reverse("autorefill:manage", args=[record.pk]))
    status = page.locator("#autorefill-status").inner_text()
    assert "Auto-refill is paused: the saved card was declined" in status
    assert "save a card again" in status
    shoot(page, "autorefill-paused")
    # The way back: the opt-in form to save another card.
    assert page.get_by_role("button", name="Continue: price, terms and card").is_visible()
