"""The FSA/HSA-ready receipt: every field an administrator asks for, on the page and in the PDF,
only for a paid order, and only for its customer (or the signed link) and staff."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import dateformat, timezone

from catalog.models import PackageTier
from notifications.models import EmailKind, OutboundEmail
from orders import services
from orders.models import OrderLine
from orders.state import PaymentStatus
from prescriptions import refill_review
from prescriptions.models import PrescriptionOnFile
from salestax.models import TaxRate
from tests.factories import UserFactory
from tests.localstripe import CARD_OK, browser_confirm
from tests.orders.conftest import make_cart, place
from tests.orders.receipt_support import pdf_text, receipt_fields
from tests.prescriptions.prescription_support import authorise, make_pharmacist, place_rx
from tests.prescriptions.refills.support import age_last_fill, approve_first_order, place_refill

pytestmark = pytest.mark.django_db(transaction=True)

PHARMACY = {
    "PHARMACY_NAME": "Hudson Valley Pharmacy",
    "PHARMACY_LICENCE_NUMBER": "NY-PHY-031415",
    "PHARMACY_ADDRESS": "12 Dock Street, Kingston, NY 12401",
}


@pytest.fixture(autouse=True)
def pharmacy(settings):
    for name, value in PHARMACY.items():
        setattr(settings, name, value)


@pytest.fixture
def rx_tier(baclofen) -> PackageTier:
    return PackageTier.objects.get(dosage__product=baclofen, dosage__strength="10mg", quantity=90)


@pytest.fixture
def ny_tax(db):
    return TaxRate.objects.create(
        state="NY",
        rate=Decimal("8.875"),
        otc_exempt=False,
        shipping_taxable=True,
        effective_from=timezone.localdate() - timedelta(days=30),
    )


def receipt_url(order, *, pdf: bool = False) -> str:
    name = "orders:receipt_pdf" if pdf else "orders:receipt"
    token = services.order_link(order).split("?")[1]
    return reverse(name, kwargs={"number": order.number}) + "?" + token


def day(value) -> str:
    return dateformat.format(value, "N j, Y")


def test_a_paid_order_receipt_names_patient_card_tax_and_each_line_on_the_page_and_in_the_pdf(
    client, localstripe, general_tier, ny_tax, django_assert_max_num_queries
):
    order = place(make_cart(tier=general_tier, packages=2)).order
    browser_confirm(
        base=localstripe.base, intent_id=order.stripe_payment_intent_id, card_number=CARD_OK
    )
    order = services.order_sync_payment(order_id=order.pk)
    assert order.payment_status == PaymentStatus.CAPTURED
    # The card as Stripe (localstripe) reported it, kept on the order: brand and last four only.
    assert (order.card_brand, order.card_last4) == ("visa", CARD_OK[-4:])
    assert order.tax.amount > 0

    # The order, its patient details, the capture's date and the lines (however many).
    with django_assert_max_num_queries(4):
        page = client.get(receipt_url(order))
    assert page.status_code == 200 and "no-store" in page["Cache-Control"]
    fields = receipt_fields(page.content)
    assert (
        fields
        == {
            "pharmacy_name": "Hudson Valley Pharmacy",
            "pharmacy_address": "12 Dock Street, Kingston, NY 12401",
            "pharmacy_licence": "NY-PHY-031415",
            "patient": "Alex Morgan",  # no prescription item: the name the order was placed in
            "card": f"Visa ending in {CARD_OK[-4:]}",
            "tax": f"${order.tax.amount}",
            "total": f"${order.total.amount}",
            "paid": f"${order.amount_captured.amount}",
            "lines": [
                {
                    "rx": "Not a prescription item",
                    "filled": day(timezone.localdate()),
                    "qty": "60 pills",
                    "amount": f"${order.lines.get().line_total.amount}",
                }
            ],
        }
    )

    pdf = client.get(receipt_url(order, pdf=True))
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert "no-store" in pdf["Cache-Control"]
    assert pdf["Content-Disposition"] == f'attachment; filename="receipt-{order.number}.pdf"'
    text = pdf_text(pdf.content)
    for value in (
        "Hudson Valley Pharmacy",
        "12 Dock Street, Kingston, NY 12401",
        "NY-PHY-031415",
        "Alex Morgan",
        f"Visa ending in {CARD_OK[-4:]}",
        "Sales tax (8.875%)",
        f"${order.tax.amount}",
        "60 pills",
        f"${order.amount_captured.amount}",
        day(timezone.localdate()),
    ):
        assert value in text, value


def test_an_approved_prescription_and_its_refill_carry_the_rx_number_and_fill_date(
    client, localstripe, rx_tier, mailoutbox
):
    user, first, record = approve_first_order(localstripe, rx_tier, refills=2)
    rx_number = f"RX{record.pk:07d}"
    line = OrderLine.objects.get(order=first)
    assert (line.rx_number, line.filled_on) == (rx_number, timezone.localdate())

    client.force_login(user)
    fields = receipt_fields(client.get(reverse("orders:receipt", args=[first.number])).content)
    # The patient from the prescription's patient details, not the name on the parcel.
    assert fields["patient"] == "Jane Doe" and first.ship_name == "Alex Morgan"
    assert fields["lines"] == [
        {
            "rx": rx_number,
            "filled": day(timezone.localdate()),
            "qty": "90 pills",
            "amount": f"${line.line_total.amount}",
        }
    ]

    # The refill, once approved and paid, names the same prescription number on its receipt.
    age_last_fill(record, days=80)
    refill = place_refill(localstripe, record, rx_tier)
    refill_review.refill_approve(order=refill, by=make_pharmacist())
    refill_line = OrderLine.objects.get(order=refill)
    assert (refill_line.rx_number, refill_line.filled_on) == (rx_number, timezone.localdate())
    fields = receipt_fields(client.get(reverse("orders:receipt", args=[refill.number])).content)
    assert [row["rx"] for row in fields["lines"]] == [rx_number]
    assert PrescriptionOnFile.objects.get(pk=record.pk).refills_used == 1

    # The receipt email of the first order carries the PDF, made at send time; the row holds
    # only the reference, never the file, and the subject names no medicine.
    row = OutboundEmail.objects.get(order=first, kind=EmailKind.PAYMENT_CAPTURED)
    assert row.attachments == [
        {"renderer": "order_receipt_pdf", "args": {"order_id": str(first.pk)}}
    ]
    [message] = [
        m for m in mailoutbox if f"order {first.number}" in m.subject and "Receipt" in m.subject
    ]
    [(filename, content, mimetype)] = message.attachments
    assert (filename, mimetype) == (f"receipt-{first.number}.pdf", "application/pdf")
    assert "baclofen" not in message.subject.casefold()
    text = pdf_text(content)
    for value in (rx_number, "Jane Doe", "NY-PHY-031415", f"Visa ending in {CARD_OK[-4:]}"):
        assert value in text, value


def test_no_receipt_before_the_payment_is_taken(client, localstripe, rx_tier):
    order = authorise(localstripe, place_rx(make_cart(tier=rx_tier), tier=rx_tier))
    assert order.payment_status == PaymentStatus.AUTHORIZED
    page = client.get(receipt_url(order))
    assert page.status_code == 404 and "no-store" in page["Cache-Control"]
    assert (
        "Nothing has been charged for this order yet, so there is no receipt. "
        "Payment: Authorised (card hold, not charged yet)."
    ) in page.content.decode()
    assert client.get(receipt_url(order, pdf=True)).status_code == 404
    assert 'id="receipt-link"' not in client.get(services.order_link(order)).content.decode()


def test_only_the_customer_the_signed_link_and_staff_who_view_orders_see_a_receipt(
    localstripe, general_tier
):
    owner = UserFactory()
    order = place(make_cart(tier=general_tier, user=owner), user=owner).order
    browser_confirm(
        base=localstripe.base, intent_id=order.stripe_payment_intent_id, card_number=CARD_OK
    )
    services.order_sync_payment(order_id=order.pk)
    plain = {
        "page": reverse("orders:receipt", args=[order.number]),
        "pdf": reverse("orders:receipt_pdf", args=[order.number]),
    }

    def status(user, url) -> int:
        client = Client()
        if user is not None:
            client.force_login(user)
        return client.get(url).status_code

    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_order"))
    for url in plain.values():
        assert status(owner, url) == 200
        assert status(UserFactory(), url) == 404  # another customer
        assert status(None, url) == 404  # nobody, without the link
        assert status(UserFactory(is_staff=True), url) == 404  # staff without the right
        assert status(viewer, url) == 200
    assert status(None, reverse("orders:receipt", args=[order.number + 1])) == 404


def test_lines_dispensed_before_the_snapshot_get_their_rx_number_from_the_fill_rows(
    localstripe, rx_tier
):
    """The data migration (prescriptions 0005) reads the fills already kept on file."""
    import importlib

    from django.apps import apps

    backfill = importlib.import_module(
        "prescriptions.migrations.0005_receipt_rx_numbers_backfill"
    ).backfill
    _user, _first, record = approve_first_order(localstripe, rx_tier, refills=2)
    age_last_fill(record, days=80)
    refill = place_refill(localstripe, record, rx_tier)
    refill_review.refill_approve(order=refill, by=make_pharmacist())
    OrderLine.objects.update(rx_number="", filled_on=None)  # as before the snapshot existed

    backfill(apps, None)
    rx_number = f"RX{record.pk:07d}"
    assert list(
        OrderLine.objects.order_by("order__number").values_list("rx_number", "filled_on")
    ) == [(rx_number, timezone.localdate()), (rx_number, timezone.localdate())]
