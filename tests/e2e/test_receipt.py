"""In the browser: a prescription order paid and approved has the receipt an FSA/HSA administrator
accepts, on its page and in the PDF attached to the receipt email (issue 25)."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import dateformat, timezone

from notifications.models import EmailKind, OutboundEmail
from orders.models import Order, OrderLine
from salestax.models import TaxRate
from tests.e2e.test_checkout import add_to_cart, checkout, order_page_reached
from tests.e2e.test_prescription import sign_in_as
from tests.localstripe import CARD_OK
from tests.orders.receipt_support import pdf_text
from tests.prescriptions.prescription_support import make_pharmacist

pytestmark = pytest.mark.e2e


@pytest.fixture
def shop(live_server, localstripe, transactional_db, settings, tmp_path):
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    settings.PHARMACY_NAME = "Hudson Valley Pharmacy"
    settings.PHARMACY_LICENCE_NUMBER = "NY-PHY-031415"
    settings.PHARMACY_ADDRESS = "12 Dock Street, Kingston, NY 12401"
    TaxRate.objects.create(
        state="NY",
        rate=Decimal("8.875"),
        otc_exempt=False,
        shipping_taxable=True,
        effective_from=timezone.localdate() - timedelta(days=30),
    )
    localstripe.register_webhook(live_server.url + reverse("orders:stripe_webhook"))
    return live_server


def checkout_and_pay(page, shop, baclofen) -> Order:
    add_to_cart(page, shop, baclofen, "10mg", 90)
    checkout(page, shop, CARD_OK, submit=False)
    page.get_by_label("Patient's name").fill("Jane Doe")  # not the name on the parcel
    page.get_by_role("button", name="Place order and pay").click()
    return order_page_reached(page)


def approve(pharmacist_page, shop, order) -> None:
    sign_in_as(pharmacist_page, shop, make_pharmacist())
    pharmacist_page.goto(shop.url + reverse("prescriptions:review_queue"))
    pharmacist_page.get_by_role("link", name=f"Review order {order.number}").click()
    pharmacist_page.get_by_label("Directions").fill("1 tablet 3 times a day")
    pharmacist_page.get_by_label("Daily dose (pills a day)").fill("3")
    pharmacist_page.get_by_label("Refills written").fill("2")
    pharmacist_page.locator("#approve-submit").click()
    pharmacist_page.wait_for_url(re.compile(r"/staff/review/$"))


def test_the_receipt_page_and_the_emailed_pdf_show_every_fsa_hsa_field(
    shop, page, baclofen, mailoutbox
):
    order = checkout_and_pay(page, shop, baclofen)
    # Authorised, not yet charged: no receipt link, and the receipt address refuses.
    assert page.locator("#receipt-link").count() == 0
    refused = page.request.get(
        page.url.replace(f"/orders/{order.number}/", f"/orders/{order.number}/receipt/")
    )
    assert refused.status == 404

    pharmacist_page = page.context.browser.new_page()
    approve(pharmacist_page, shop, order)
    pharmacist_page.close()
    order.refresh_from_db()
    line = OrderLine.objects.get(order=order)
    assert order.payment_status == "captured" and line.rx_number.startswith("RX")
    today = dateformat.format(timezone.localdate(), "N j, Y")

    page.reload()
    page.get_by_role("link", name="Printable receipt").click()
    page.wait_for_url(re.compile(rf"/orders/{order.number}/receipt/\?t="))
    expected = {
        "#receipt-pharmacy-name": "Hudson Valley Pharmacy",
        "#receipt-pharmacy-licence": "NY-PHY-031415",
        "#receipt-pharmacy-address": "12 Dock Street, Kingston, NY 12401",
        "#receipt-patient": "Jane Doe",
        "#receipt-card": f"Visa ending in {CARD_OK[-4:]}",
        "#receipt-tax": f"${order.tax.amount}",
        "#receipt-paid": f"${order.amount_captured.amount}",
        ".receipt-line .receipt-rx": line.rx_number,
        ".receipt-line .receipt-filled": today,
        ".receipt-line .receipt-qty": "90 pills",
        ".receipt-line .receipt-amount": f"${line.line_total.amount}",
    }
    for selector, text in expected.items():
        assert page.locator(selector).inner_text().strip() == text, selector
    assert "Baclofen 10mg" in page.locator(".receipt-line").inner_text()

    # The page's PDF link: a file named after the order only, never the medicine.
    pdf = page.request.get(shop.url + page.locator("#receipt-pdf-link").get_attribute("href"))
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == (
        f'attachment; filename="receipt-{order.number}.pdf"'
    )
    assert "no-store" in pdf.headers["cache-control"]

    # The receipt email carries the same receipt as a PDF; its subject names no medicine.
    assert OutboundEmail.objects.get(order=order, kind=EmailKind.PAYMENT_CAPTURED).status == "sent"
    [email] = [m for m in mailoutbox if m.subject == f"Receipt for your order {order.number}"]
    assert "baclofen" not in email.subject.casefold()
    [(filename, content, mimetype)] = email.attachments
    assert (filename, mimetype) == (f"receipt-{order.number}.pdf", "application/pdf")
    text = pdf_text(content)
    for value in [*expected.values(), "Baclofen 10mg", "Sales tax (8.875%)"]:
        assert value in text, value
    assert pdf_text(pdf.body()) == text
