"""Done-when of issue 25 for messages, in Chromium: the patient asks about an order from its page;
the pharmacist sees the unread count in the header and the inbox, opens the thread and answers;
the patient is emailed that a message waits (the outbox row names no medicine and no health
detail) and reads the answer, with read receipts on both sides.

``MESSAGES_SCREENSHOTS=<dir>`` also saves the pages at 375 and 1280 px wide (docs/messages.md)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from django.urls import reverse

from notifications.models import EmailKind, OutboundEmail
from notifications.services import email_render
from prescriptions.models import PatientMessage
from tests.e2e.test_prescription import shop, sign_in_as  # noqa: F401  (the live shop fixture)

pytestmark = pytest.mark.e2e

QUESTION = "Should I take the baclofen with food? It makes me dizzy in the morning."
ANSWER = "Yes, take it with food. Dizziness often passes in a week; tell us if it does not."


def _shots(page, name: str) -> None:
    folder = os.environ.get("MESSAGES_SCREENSHOTS")
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    for width in (375, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=f"{folder}/{name}-{width}.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def test_patient_asks_about_an_order_and_reads_the_pharmacists_answer(
    shop, page, patient, pharmacist, patient_order
):
    # The patient, on the order's page.
    sign_in_as(page, shop, patient)
    page.goto(shop.url + patient_order.get_absolute_url())
    page.get_by_role("link", name="Ask a pharmacist about this order").click()
    page.wait_for_url(re.compile(r"/accounts/messages/\?order=\d+"))
    assert page.get_by_label("About").input_value() == f"order:{patient_order.number}"
    page.get_by_label("Your message").fill(QUESTION)
    page.get_by_role("button", name="Send to the pharmacist").click()
    page.wait_for_url(re.compile(r"/accounts/messages/#latest$"))
    mine = page.locator(".msg-mine").last
    assert QUESTION in mine.inner_text()
    assert f"About order {patient_order.number}" in mine.inner_text()
    assert "Sent, not read yet" in mine.inner_text()

    # The pharmacist: the header and the inbox count the waiting patient and the unread message.
    staff = page.context.browser.new_page()
    sign_in_as(staff, shop, pharmacist)
    staff.goto(shop.url + reverse("prescriptions:review_queue"))
    assert staff.locator("#header-messages .review-count").inner_text() == "1"
    staff.locator("#header-messages").click()
    staff.wait_for_url(re.compile(r"/staff/messages/$"))
    row = staff.locator(f"#thread-{patient.pk}")
    assert row.locator(".unread .count-badge").inner_text() == "1"
    assert re.search(r"\d+ min", row.locator(".waiting").inner_text())
    _shots(staff, "staff-inbox")
    row.get_by_role("link", name="Jane Doe").click()
    staff.wait_for_url(re.compile(rf"/staff/messages/{patient.pk}/$"))
    assert QUESTION in staff.locator(".msg-theirs").last.inner_text()
    staff.get_by_label("Your answer").fill(ANSWER)
    staff.get_by_role("button", name="Send to the patient").click()
    staff.wait_for_url(re.compile(r"#latest$"))
    assert "Sent, not read yet" in staff.locator(".msg-mine").last.inner_text()
    staff.goto(shop.url + reverse("messaging:inbox"))
    assert staff.locator("#inbox-waiting").inner_text() == "0"
    assert "Answered" in staff.locator(f"#thread-{patient.pk} .waiting").inner_text()

    # The email notice: that a message waits, with a sign-in link, nothing else.
    email = OutboundEmail.objects.get(kind=EmailKind.PHARMACY_MESSAGE)
    assert email.recipient == patient.email
    rendered = email_render(email=email)
    everything = " ".join(
        [email.subject, json.dumps(email.context), rendered.body, rendered.alternatives[0][0]]
    ).casefold()
    for detail in ("baclofen", "10mg", "dizz", "food", str(patient_order.number)):
        assert detail not in everything, detail
    assert rendered.subject == "You have a new message from Riverside Pharmacy"

    # The patient reads the answer; their own message now shows it was read.
    page.goto(shop.url + reverse("accounts:dashboard"))
    assert "1 new message from the pharmacy." in page.locator("#messages").inner_text()
    page.get_by_role("link", name=re.compile(r"^Messages \(1 new\)")).click()
    answer = page.locator(".msg-theirs").last
    assert ANSWER in answer.inner_text() and "Ruth O., pharmacist" in answer.inner_text()
    assert "Read by the pharmacy" in page.locator(".msg-mine").last.inner_text()
    _shots(page, "patient-thread")
    staff.goto(shop.url + reverse("messaging:staff_thread", args=[patient.pk]))
    assert "Read by the patient" in staff.locator(".msg-mine").last.inner_text()
    _shots(staff, "staff-thread")
    assert PatientMessage.objects.count() == 2
    staff.close()
