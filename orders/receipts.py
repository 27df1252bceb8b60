"""The receipt of a paid order, as an FSA/HSA administrator accepts it: on a page and as a PDF.

An administrator asks for the patient's name, the pharmacy (name, licence, address), each item
with its prescription number, fill date, quantity and amount, the tax and how it was paid. Every
one of those is a snapshot the order already keeps, so a receipt printed a year later says what
was true on the day: the money from placement and capture, the card's brand and last four digits
from Stripe's answer when the payment was authorised or captured (``orders.services``), the
prescription number and fill date per line written by the prescription side when the line was
dispensed, and the patient from the order's patient details. The pharmacy's details come from
settings (``PHARMACY_*``).

Only a paid order has a receipt (captured, or refunded after capture): before that nothing was
charged, and a receipt would claim otherwise. The PDF is the page's markup rendered by WeasyPrint
(``orders/receipt_pdf.html``); it never fetches anything over the network, and its file name
carries the order number only, never a medicine.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.core.exceptions import ObjectDoesNotExist
from django.template.loader import render_to_string
from django.utils import timezone

from pharmacy.context_processors import pharmacy as pharmacy_details
from pharmacy.us_address import STATE_NAMES

from .models import Order, OrderEvent, OrderLine
from .state import PaymentStatus

#: Payment states in which money was taken: the only ones with a receipt.
RECEIPT_PAYMENT_STATUSES = frozenset(
    {PaymentStatus.CAPTURED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED}
)

#: Stripe's card brand codes as a receipt names them.
CARD_BRANDS = {
    "amex": "American Express",
    "diners": "Diners Club",
    "discover": "Discover",
    "eftpos_au": "eftpos",
    "jcb": "JCB",
    "mastercard": "Mastercard",
    "unionpay": "UnionPay",
    "visa": "Visa",
}


class NoReceipt(Exception):
    """The order has no receipt yet (nothing was charged); the message is fit to show."""


@dataclass(frozen=True)
class ReceiptLine:
    line: OrderLine
    rx_number: str
    filled_on: date | None
    pills: int


@dataclass(frozen=True)
class Receipt:
    order: Order
    patient_name: str
    paid_on: date | None
    card: str
    lines: list[ReceiptLine]
    state_name: str

    @property
    def filename(self) -> str:
        return receipt_filename(self.order)


def receipt_issued(order: Order) -> bool:
    return order.payment_status in RECEIPT_PAYMENT_STATUSES


def receipt_filename(order: Order) -> str:
    """The PDF's name: the order number only (a download folder must not list medicines)."""
    return f"receipt-{order.number}.pdf"


def card_label(*, brand: str, last4: str) -> str:
    """ "Visa ending in 4242"; the brand code as Stripe gave it if the shop does not know it."""
    if not last4:
        return ""
    name = CARD_BRANDS.get(brand, brand.replace("_", " ").title() or "Card")
    return f"{name} ending in {last4}"


def _patient_name(order: Order) -> str:
    """The patient from the order's patient details; without them (no prescription item), the
    name the order was placed in, the person the purchase was for."""
    try:
        return order.patient.name
    except ObjectDoesNotExist:
        return order.ship_name


def _paid_on(order: Order) -> date | None:
    paid_at = (
        order.events.filter(kind=OrderEvent.Kind.PAYMENT, to_status=PaymentStatus.CAPTURED)
        .values_list("created_at", flat=True)
        .first()
    )
    return timezone.localdate(paid_at) if paid_at else None


def receipt_for(order: Order) -> Receipt:
    """Everything the receipt shows, or ``NoReceipt`` for an order nothing was charged for."""
    if not receipt_issued(order):
        raise NoReceipt(
            "Nothing has been charged for this order yet, so there is no receipt. "
            f"Payment: {order.get_payment_status_display()}."
        )
    paid_on = _paid_on(order)
    return Receipt(
        order=order,
        patient_name=_patient_name(order),
        paid_on=paid_on,
        card=card_label(brand=order.card_brand, last4=order.card_last4),
        lines=[
            ReceiptLine(
                line=line,
                rx_number=line.rx_number,
                # A line without a prescription is dispensed the day it is paid for.
                filled_on=line.filled_on or paid_on,
                pills=line.pack_size * line.packages,
            )
            for line in order.lines.all()
        ],
        state_name=STATE_NAMES.get(order.ship_state, order.ship_state),
    )


def _context(receipt: Receipt) -> dict:
    return {
        "receipt": receipt,
        "order": receipt.order,
        "has_refund": bool(receipt.order.amount_refunded.amount),
        # The same details as every page's footer (the PDF is rendered without a request).
        **pharmacy_details(None),
    }


def receipt_page_context(receipt: Receipt) -> dict:
    return _context(receipt)


def _refuse_fetch(url: str, *args, **kwargs):
    """The PDF is made from the template alone: no stylesheet, font or image is fetched."""
    raise ValueError("The receipt PDF fetches nothing.")


def receipt_pdf(receipt: Receipt) -> bytes:
    """The receipt as a PDF (WeasyPrint renders ``orders/receipt_pdf.html``)."""
    from weasyprint import HTML  # a heavy import, needed by the PDF only

    html = render_to_string("orders/receipt_pdf.html", _context(receipt))
    return HTML(string=html, url_fetcher=_refuse_fetch).write_pdf()


def receipt_pdf_attachment(*, order_id: str) -> tuple[str, bytes, str] | None:
    """The outbox's renderer (``settings.EMAIL_ATTACHMENT_RENDERERS``): the PDF of a paid order,
    made when the receipt email is sent, from the order as it is stored. None (the email goes
    without it) for an order that has no receipt: nothing was charged, or it is gone."""
    order = Order.objects.filter(pk=order_id).first()
    if order is None or not receipt_issued(order):
        return None
    receipt = receipt_for(order)
    return receipt.filename, receipt_pdf(receipt), "application/pdf"
