"""Done-when of issue 25 (transfer in, renewal requests), in Chromium against localstripe.

A transfer request from the account → the pharmacist marks it contacted → received (kept on
file) → the patient orders from it and the pharmacist approves the refill (captured). A renewal
asked in one click → the prescriber page shows every field → sent → renewed → the new
prescription on file is ordered. Set CARE_SCREENSHOTS=<dir> to keep screenshots at 1280 and
375 px of every page on the way.
"""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path

import pytest
from django.urls import reverse

from orders.models import Order
from orders.state import OrderStatus, PaymentStatus
from prescriptions.models import RenewalRequest, TransferRequest
from tests.e2e.test_prescription import shop, sign_in_as  # noqa: F401  (the live shop fixture)
from tests.factories import UserFactory
from tests.localstripe import CARD_OK
from tests.prescriptions.care_support import used_up_record
from tests.prescriptions.prescription_support import captured_minor, make_pharmacist

pytestmark = pytest.mark.e2e
SHOTS = os.environ.get("CARE_SCREENSHOTS")


def shot(page, name: str) -> None:
    """Full-page screenshots at 1280 and 375 px (only when CARE_SCREENSHOTS is set)."""
    if not SHOTS:
        return
    Path(SHOTS).mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    for width in (1280, 375):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=f"{SHOTS}/{name}-{width}.png", full_page=True)
    page.set_viewport_size(size)


def pay_for_cart(page, shop, email: str) -> Order:
    """Checkout of a refill in the cart: no prescription step, the card authorised."""
    page.goto(shop.url + reverse("checkout:checkout"))
    assert page.locator(".prescription-step").count() == 0
    page.get_by_label("Email").fill(email)
    page.get_by_label("Full name").fill("Jane Doe")
    page.get_by_label("Address line 1").fill("100 River Street")
    page.get_by_label("City").fill("Albany")
    page.get_by_label("State").select_option("NY")
    page.get_by_label("ZIP code").fill("12207")
    card_box = page.locator("#card-element")
    card_box.get_by_placeholder("number").fill(CARD_OK)
    card_box.get_by_placeholder("exp_month").fill("12")
    card_box.get_by_placeholder("exp_year").fill("34")
    card_box.get_by_placeholder("cvc").fill("123")
    card_box.get_by_placeholder("postal_code").fill("12207")
    page.get_by_role("button", name="Place order and pay").click()
    page.wait_for_url(re.compile(r"/orders/\d+/"))
    order = Order.objects.get(number=int(page.locator("#order-number").inner_text()))
    assert (order.status, order.payment_status) == (
        OrderStatus.AWAITING_REVIEW,
        PaymentStatus.AUTHORIZED,
    )
    return order


def test_transfer_in_received_and_ordered_in_the_browser(shop, page, baclofen, localstripe):
    from tests.prescriptions.care_support import controlled_dosage

    controlled_dosage()
    patient = UserFactory(email="jane@example.com", first_name="Jane", last_name="Doe")
    pharmacist = make_pharmacist()
    sign_in_as(page, shop, patient)
    page.goto(shop.url + reverse("accounts:dashboard"))
    page.get_by_role("link", name="Transfer it to us").click()
    options = page.get_by_label("Medicine and strength").locator("option").all_inner_texts()
    assert "Baclofen 10mg" in options and not any("Oxycodone" in o for o in options)
    assert page.get_by_label("Patient's full name").input_value() == "Jane Doe"
    page.get_by_label("Patient's date of birth").fill("1980-05-17")
    page.get_by_label("Medicine and strength").select_option(label="Baclofen 10mg")
    page.get_by_label("Pharmacy that has the prescription now").fill("Corner Drug")
    page.get_by_label("That pharmacy's phone number").fill("518-555-0199")
    page.get_by_label("Prescription number (on the label)").fill("RX-4471")
    page.get_by_label("Prescriber (doctor or nurse practitioner)").fill("Dr. Ruth Okafor")
    shot(page, "transfer-form")
    page.get_by_role("button", name="Ask for the transfer").click()
    page.wait_for_url(re.compile(r"/accounts/transfers/\d+/$"))
    assert page.locator("#transfer-status").inner_text() == "Requested"
    transfer = TransferRequest.objects.get()

    staff = page.context.browser.new_page()
    sign_in_as(staff, shop, pharmacist)
    staff.goto(shop.url + reverse("prescriptions:review_queue"))
    staff.get_by_role("link", name="Transfer queue").click()
    assert "Corner Drug" in staff.locator(f"#transfer-{transfer.pk}").inner_text()
    shot(staff, "transfer-queue")
    staff.get_by_role("link", name=f"Handle transfer {transfer.pk}").click()
    staff.get_by_label("Note (for the record)").fill("Called Corner Drug, spoke to the pharmacist.")
    staff.get_by_role("button", name="Mark contacted").click()
    assert staff.locator("#transfer-status").get_attribute("data-status") == "contacted"
    form = staff.locator("#receive-form")
    form.get_by_label("Directions, as written").fill("1 tablet 3 times a day")
    form.get_by_label("Daily dose (pills a day)").fill("3")
    form.get_by_label("Pills per fill").fill("90")
    form.get_by_label("Date written").fill("2026-10-01")
    form.get_by_label("Prescriber's licence or NPI number").fill("1234567890")
    form.get_by_label("Fills left to transfer").fill("2")
    form.get_by_label("Valid until").fill("2027-10-01")
    form.get_by_label("Last filled there on").fill("2026-10-20")
    form.get_by_label("Pills in that last fill").fill("90")
    shot(staff, "transfer-review")
    form.get_by_role("button", name="Record received prescription").click()
    assert staff.locator("#transfer-status").get_attribute("data-status") == "received"
    assert "2 of 2 fills left" in staff.locator("#transfer-on-file").inner_text()
    texts = staff.locator("#timeline li").all_inner_texts()
    assert [t.split(": ")[1].split(" by ")[0] for t in texts] == [
        "Requested",
        "Other pharmacy contacted",
        "Received, on file",
    ]

    page.reload()
    assert page.locator("#transfer-status").inner_text() == "Received, on file"
    shot(page, "transfer-status")
    page.get_by_role("link", name="Order Baclofen").click()
    page.get_by_role("button", name="Refill: add to cart").click()
    page.wait_for_url(re.compile(r"/cart/"))
    refill = pay_for_cart(page, shop, patient.email)

    staff.goto(shop.url + reverse("prescriptions:review_queue"))
    staff.get_by_role("link", name=f"Review refill {refill.number}").click()
    staff.get_by_role("button", name=re.compile("Approve refill")).click()
    staff.wait_for_url(re.compile(r"/staff/review/$"))
    refill.refresh_from_db()
    transfer.refresh_from_db()
    assert refill.payment_status == PaymentStatus.CAPTURED
    assert captured_minor(localstripe, refill.stripe_payment_intent_id) == int(
        refill.total.amount * 100
    )
    assert transfer.prescription.refills_left == 1
    staff.close()


def test_renewal_prescriber_page_renewed_and_ordered_in_the_browser(
    shop, page, baclofen, localstripe
):
    from catalog.models import PackageTier

    tier = PackageTier.objects.get(dosage__product=baclofen, dosage__strength="10mg", quantity=90)
    pharmacist = make_pharmacist()
    record = used_up_record(localstripe, tier, pharmacist=pharmacist)
    sign_in_as(page, shop, record.user)
    page.goto(shop.url + reverse("refills:list"))
    assert "New prescription needed" in page.locator(f"#prescription-{record.pk}").inner_text()
    page.goto(shop.url + reverse("refills:detail", args=[record.pk]))
    shot(page, "renewal-ask")
    page.get_by_role("button", name="Ask for a renewal").click()
    page.wait_for_url(re.compile(r"/accounts/renewals/\d+/$"))
    assert page.locator("#renewal-status").inner_text() == "Requested"
    renewal = RenewalRequest.objects.get()

    staff = page.context.browser.new_page()
    sign_in_as(staff, shop, pharmacist)
    staff.goto(shop.url + reverse("prescriptions:review_queue"))
    staff.get_by_role("link", name="Renewal queue").click()
    shot(staff, "renewal-queue")
    staff.get_by_role("link", name=f"Handle renewal {renewal.pk}").click()
    staff.get_by_role("link", name="Prescriber page (print or fax)").click()
    sheet = staff.locator("#prescriber-sheet")
    expected = {
        "#sheet-pharmacy": "Riverside Pharmacy",
        "#sheet-patient": "Jane Doe",
        "#sheet-dob": "May 17, 1980",
        "#sheet-medicine": "Baclofen",
        "#sheet-strength": "10mg",
        "#sheet-directions": "1 tablet 3 times a day",
        "#sheet-quantity": "90 pills (3 a day)",
        "#sheet-last-fill": f"{record.last_filled_on:%b %-d, %Y}, 90 pills (order {record.source_order.number})",
    }
    for selector, text in expected.items():
        assert sheet.locator(selector).inner_text() == text, selector
    shot(staff, "renewal-prescriber")
    # Printed, only the sheet: the shop's header and the way back are not on paper.
    staff.emulate_media(media="print")
    assert staff.locator(".site-header").is_hidden() and staff.locator(".no-print").is_hidden()
    if SHOTS:
        staff.pdf(path=f"{SHOTS}/renewal-prescriber.pdf")
    staff.emulate_media(media="screen")
    staff.go_back()
    staff.get_by_role("button", name="Mark sent to prescriber").click()
    assert staff.locator("#renewal-status").get_attribute("data-status") == "sent"
    form = staff.locator("#renew-form")
    assert form.get_by_label("Directions, as written").input_value() == "1 tablet 3 times a day"
    form.get_by_label("Refills written").fill("2")
    # The first prescription came as an uploaded copy: the prescriber's details come with the renewal.
    form.get_by_label("Prescriber's name").fill("Dr. Ruth Okafor")
    form.get_by_label("Prescriber's licence or NPI number").fill("1234567890")
    assert form.get_by_label("Date written", exact=True).input_value() == f"{date.today():%Y-%m-%d}"
    shot(staff, "renewal-review")
    form.get_by_role("button", name="Record renewed prescription").click()
    assert staff.locator("#renewal-status").get_attribute("data-status") == "renewed"
    renewal.refresh_from_db()
    new = renewal.renewed_prescription
    assert (new.refills_left, new.prescriber_licence) == (3, "1234567890") and new.pk != record.pk

    page.reload()
    assert page.locator("#renewal-status").inner_text() == "Renewed, on file"
    shot(page, "renewal-status")
    page.get_by_role("link", name="Order Baclofen").click()
    assert page.locator("#refills-left").inner_text() == "3 of 3"
    page.get_by_role("button", name="Refill: add to cart").click()
    page.wait_for_url(re.compile(r"/cart/"))
    order = pay_for_cart(page, shop, record.user.email)
    assert order.refills.get().prescription_id == new.pk
    page.goto(shop.url + reverse("accounts:dashboard"))
    assert "Renewed, on file" in page.locator(f"#care-renewal-{renewal.pk}").inner_text()
    shot(page, "account-care")
    staff.close()
