"""In the browser: a prescription order with an uploaded copy is authorised, reviewed, captured."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from orders.models import Order
from orders.state import OrderStatus, PaymentStatus
from tests.localstripe import CARD_OK
from tests.prescriptions.prescription_support import MINIMAL_PDF, captured_minor, make_pharmacist

pytestmark = pytest.mark.e2e


@pytest.fixture
def shop(live_server, localstripe, transactional_db, settings, tmp_path):
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    localstripe.register_webhook(live_server.url + reverse("orders:stripe_webhook"))
    return live_server


def sign_in_as(page, shop, user):
    client = Client()
    client.force_login(user)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": shop.url}]
    )


def test_prescription_upload_review_and_capture_in_the_browser(
    shop, page, baclofen, tmp_path, localstripe
):
    page.goto(shop.url + baclofen.get_absolute_url())
    page.get_by_role("button", name="Add to cart (Baclofen 10mg, 90 pills)").click()
    page.wait_for_load_state("networkidle")
    page.goto(shop.url + reverse("checkout:checkout"))
    assert (
        "verifies the original with your prescriber"
        in page.locator(".prescription-step").inner_text()
    )

    page.get_by_label("Email").fill("jane@example.com")
    page.get_by_label("Full name").fill("Jane Doe")
    page.get_by_label("Address line 1").fill("100 River Street")
    page.get_by_label("City").fill("Albany")
    page.get_by_label("State").select_option("NY")
    page.get_by_label("ZIP code").fill("12207")
    page.get_by_label("Patient's name").fill("Jane Doe")
    page.get_by_label("Patient's date of birth").fill("1980-05-17")
    page.get_by_label("Allergies").fill("Penicillin")
    scan = tmp_path / "my prescription.pdf"
    scan.write_bytes(MINIMAL_PDF)
    card_box = page.locator("#card-element")

    # A renamed executable is refused before any card is touched.
    fake = tmp_path / "prescription.pdf"
    fake.write_bytes(b"\x7fELF\x02\x01\x01" + b"\x00" * 100)
    page.locator("input[type=file]").set_input_files(str(fake))
    card_box.get_by_placeholder("number").fill(CARD_OK)
    card_box.get_by_placeholder("exp_month").fill("12")
    card_box.get_by_placeholder("exp_year").fill("34")
    card_box.get_by_placeholder("cvc").fill("123")
    card_box.get_by_placeholder("postal_code").fill("12207")
    page.get_by_role("button", name="Place order and pay").click()
    error = page.locator("[id^=error-rx_][id$=_file]")
    error.filter(has_text="not a PDF").wait_for()
    assert not Order.objects.exists()

    page.locator("input[type=file]").set_input_files(str(scan))
    page.get_by_role("button", name="Place order and pay").click()
    page.wait_for_url(re.compile(r"/orders/\d+/\?t="))
    assert "Awaiting pharmacist review" in page.locator("#prescription-status").inner_text()
    order = Order.objects.get(number=int(page.locator("#order-number").inner_text()))
    assert (order.status, order.payment_status) == (
        OrderStatus.AWAITING_REVIEW,
        PaymentStatus.AUTHORIZED,
    )
    assert order.prescriptions.get().content_type == "application/pdf"

    # The pharmacist reviews it on the staff page and approves; the hold is captured.
    pharmacist_page = page.context.browser.new_page()
    sign_in_as(pharmacist_page, shop, make_pharmacist())
    pharmacist_page.goto(shop.url + reverse("prescriptions:review_queue"))
    pharmacist_page.get_by_role("link", name=f"Review order {order.number}").click()
    assert "Penicillin" in pharmacist_page.locator("main").inner_text()
    file_url = pharmacist_page.get_by_role("link", name="Open the uploaded copy").get_attribute(
        "href"
    )
    assert pharmacist_page.request.get(shop.url + file_url).body() == MINIMAL_PDF
    # The one approval keeps the prescription on file; its amount comes from the server (htmx).
    pharmacist_page.get_by_label("Directions").fill("1 tablet 3 times a day")
    pharmacist_page.get_by_label("Daily dose (pills a day)").fill("3")
    pharmacist_page.get_by_label("Refills written").fill("2")
    approve = pharmacist_page.locator("#approve-submit")
    assert approve.inner_text() == f"Approve and charge ${order.total.amount}"
    packs = pharmacist_page.get_by_label(re.compile(r"Baclofen 10mg, 90 pills \(ordered 1\)"))
    packs.fill("0")
    pharmacist_page.locator("#capture-text", has_text="Every item is set to 0").wait_for()
    assert approve.is_disabled()
    packs.fill("1")
    pharmacist_page.locator(
        "#capture-text", has_text=f"Will capture ${order.total.amount}"
    ).wait_for()
    approve.click()
    pharmacist_page.wait_for_url(re.compile(r"/staff/review/$"))
    assert f"Order {order.number} approved" in pharmacist_page.locator(".messages").inner_text()
    pharmacist_page.close()

    order.refresh_from_db()
    assert (order.status, order.payment_status) == (
        OrderStatus.READY_TO_SHIP,
        PaymentStatus.CAPTURED,
    )
    assert captured_minor(localstripe, order.stripe_payment_intent_id) == int(
        order.total.amount * 100
    )
    page.reload()
    assert "Approved." in page.locator("#prescription-status").inner_text()
