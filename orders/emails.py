"""Every email about an order: what it says (its context), to whom, once, and what its subject must not name.

The orders app owns these emails' subject matter, so it builds them here and hands the generic
outbox (``notifications.services.email_queue``) plain data: amounts already formatted with the
one money formatter, links absolute, lines as dicts. The outbox stores that context in the row,
so a retry or a staff resend sends the very same email, and ``notifications`` never reads an order.

One way to trigger an order email: ``order_email(order=..., kind=..., event=..., details=...)``.
Every trigger calls it, and it alone decides the recipient, the dedupe key, the context and the
forbidden subject words. Why two kinds of caller and not one table:

* Payment moves (authorised, captured) happen in several places (the webhook's sync, capture on
  approval, the reconciliation task), so they are keyed on the move: ``order_transition`` calls
  ``order_emails_on_transition`` with ``PAYMENT_EMAILS``, and a move replayed by a second webhook
  sends nothing twice (same dedupe key).
* A review decision, a shipment, a refund or a refill reminder each happens in exactly one
  service, which has details no status move carries (the reason, the tracking number, the amount
  refunded); that service calls ``order_email`` itself with them. Pushing those into the table
  would mean passing an untyped bag of details through ``order_transition`` for nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

from django.conf import settings
from django.urls import NoReverseMatch, reverse
from django.utils import formats, timezone

from catalog.pricing import format_money
from notifications.models import EmailKind, OutboundEmail
from notifications.services import email_queue, email_queue_digest

from .carriers import tracking_url
from .holds import hold_validity, with_authorised_at
from .links import order_link
from .models import Order
from .state import PaymentStatus

#: Kinds that can legitimately happen more than once per order: their dedupe key carries the
#: id of the event that caused them (the pharmacist's question, the refund, the refill reminder).
REPEATABLE_KINDS = frozenset(
    {EmailKind.INFORMATION_REQUESTED, EmailKind.REFUND_ISSUED, EmailKind.REFILL_REMINDER}
)
#: Kinds addressed to the pharmacy team rather than the customer. They never list item names.
STAFF_KINDS = frozenset({EmailKind.STAFF_NEW_ORDER, EmailKind.STAFF_AUTHORISATIONS_EXPIRING})

#: Which emails a payment move sends. "Order received" follows the card hold, never the checkout;
#: a payment Stripe reports as captured before we saw the hold still sends it (deduplicated).
PAYMENT_EMAILS: dict[str, tuple[str, ...]] = {
    PaymentStatus.AUTHORIZED: (EmailKind.ORDER_RECEIVED, EmailKind.STAFF_NEW_ORDER),
    PaymentStatus.CAPTURED: (
        EmailKind.ORDER_RECEIVED,
        EmailKind.STAFF_NEW_ORDER,
        EmailKind.PAYMENT_CAPTURED,
    ),
}

#: Files an email carries, made when it is sent (``settings.EMAIL_ATTACHMENT_RENDERERS``): the
#: receipt email attaches the receipt PDF (``orders.receipts``), with the prescription numbers the
#: approval wrote in the same transaction as the capture that queued the email.
ATTACHMENTS = {
    EmailKind.PAYMENT_CAPTURED: lambda order: [
        {"renderer": "order_receipt_pdf", "args": {"order_id": str(order.pk)}}
    ],
}

#: "We've received your order" means "your card is held": never before the authorisation.
_AFTER_AUTHORISATION = frozenset({EmailKind.ORDER_RECEIVED, EmailKind.STAFF_NEW_ORDER})
_HELD_OR_PAID = frozenset(
    {
        PaymentStatus.AUTHORIZED,
        PaymentStatus.CAPTURED,
        PaymentStatus.PARTIALLY_REFUNDED,
        PaymentStatus.REFUNDED,
    }
)


def absolute_url(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


def admin_order_url(order: Order) -> str:
    try:
        path = reverse("admin:orders_order_change", args=[order.pk])
    except NoReverseMatch:
        path = reverse("admin:index")
    return absolute_url(path)


def _amount(value) -> str:
    """Money as the email shows it; Money values from callers are formatted, text passes through."""
    return format_money(value) if hasattr(value, "currency") else value


def order_facts(order: Order) -> dict:
    """The order as its emails show it, in plain data (``{{ order.total }}`` is already "$12.50")."""
    rate = order.tax_rate
    return {
        "number": str(order.number),
        "ship_name": order.ship_name,
        "created_at": formats.date_format(timezone.localtime(order.created_at), "DATETIME_FORMAT"),
        "subtotal": format_money(order.subtotal),
        "savings": format_money(order.savings) if order.savings.amount else "",
        "discount": format_money(order.discount) if order.discount.amount else "",
        "discount_code": order.discount_code,
        "taxed": bool(order.tax_rule),
        "tax": format_money(order.tax),
        "tax_rate": format(rate.normalize(), "f") if rate is not None else "",
        "shipping": format_money(order.shipping),
        "shipping_method": order.get_shipping_method_display(),
        "total": format_money(order.total),
        "captured": bool(order.amount_captured.amount),
        "amount_captured": format_money(order.amount_captured),
        "amount_refunded": format_money(order.amount_refunded),
        "has_prescription_items": order.has_prescription_items,
        "shipping_address_lines": order.shipping_address_lines,
    }


def order_lines(order: Order) -> list[dict]:
    return [
        {
            "product_name": line.product_name,
            "strength": line.strength,
            "pack_size": line.pack_size,
            "packages": line.packages,
            "unit_price": format_money(line.unit_price),
            "line_total": format_money(line.line_total),
        }
        for line in order.lines.all()
    ]


def forbidden_subject_words(order: Order) -> set[str]:
    """Names that must never reach a subject line: every medicine in the order, by every name."""
    words: set[str] = set()
    for line in order.lines.select_related("tier__dosage__product"):
        words.add(line.product_name)
        product = line.tier.dosage.product if line.tier_id else None
        if product is not None:
            words.update({product.name, product.active_ingredient})
            words.update(name.strip() for name in product.brand_names.split(","))
    return {word.casefold() for word in words if word and len(word.strip()) >= 3}


def order_email_context(*, order: Order, kind: str, details: dict | None = None) -> dict:
    """What the ``emails/<kind>`` templates render: the order's facts, its lines or counts, links."""
    context: dict = {"order": order_facts(order), "is_staff_email": kind in STAFF_KINDS}
    if kind in STAFF_KINDS:
        lines = list(order.lines.all())
        context["line_count"] = len(lines)
        context["package_count"] = sum(line.packages for line in lines)
        context["admin_url"] = admin_order_url(order)
    else:
        context["lines"] = order_lines(order)
        context["order_url"] = absolute_url(order_link(order))
    details = dict(details or {})
    if kind == EmailKind.SHIPPED and not details.get("tracking_url"):
        details["tracking_url"] = tracking_url(
            carrier=details.get("carrier", ""), number=details.get("tracking_number", "")
        )
    # The trigger's details (a reason, a tracking number) never shadow the order's own facts.
    return {**{key: _amount(value) for key, value in details.items()}, **context}


def order_email(
    *, order: Order, kind: str, event=None, details: dict | None = None
) -> OutboundEmail:
    """Queue one email about ``order`` (sent after the caller's transaction commits), once.

    ``event`` is the id of what caused a repeatable kind (the review, the refund, the fill);
    ``details`` are what that trigger adds (amounts may be Money: they are formatted here).
    """
    if kind in _AFTER_AUTHORISATION and order.payment_status not in _HELD_OR_PAID:
        raise ValueError(
            f"A {kind} email is sent once the card is authorised, not while the payment is {order.payment_status}."
        )
    key = f"{order.pk}:{kind}"
    if kind in REPEATABLE_KINDS:
        if event in (None, ""):
            raise ValueError(
                f"Emails of kind {kind!r} can repeat; pass the event that caused this one."
            )
        key = f"{key}:{event}"
    return email_queue(
        kind=kind,
        to=settings.PHARMACY_STAFF_EMAIL if kind in STAFF_KINDS else order.email,
        context=order_email_context(order=order, kind=kind, details=details),
        dedupe_key=key,
        forbidden_words=forbidden_subject_words(order),
        related=order,
        attachments=ATTACHMENTS.get(kind, lambda order: [])(order),
    )


def order_emails_on_transition(*, order: Order, field: str, to: str) -> None:
    """The emails a payment move sends (``PAYMENT_EMAILS``); called by ``order_transition``."""
    if field != "payment_status":
        return
    for kind in PAYMENT_EMAILS.get(to, ()):
        order_email(order=order, kind=kind)


# --- The staff digest of card holds about to lapse --------------------------------------------


def lapsing_holds(*, now: datetime | None = None, within: timedelta | None = None):
    """Orders whose card hold lapses within ``within`` (AUTHORISATION_WARNING_HOURS), annotated
    ``authorised_at``: the digest lists them, the staff gauge counts them (``orders.gauges``)."""
    now = now or timezone.now()
    within = within or timedelta(hours=getattr(settings, "AUTHORISATION_WARNING_HOURS", 24))
    validity = hold_validity()
    return with_authorised_at(Order.objects.filter(payment_status=PaymentStatus.AUTHORIZED)).filter(
        authorised_at__gt=now - validity, authorised_at__lte=now - validity + within
    )


def expiring_authorisations(
    *, now: datetime | None = None, within: timedelta | None = None
) -> list[tuple[Order, datetime]]:
    """(order, expires_at) for card holds that lapse within ``within``; the soonest first."""
    validity = hold_validity()
    orders = lapsing_holds(now=now, within=within).order_by("authorised_at")
    return [(order, order.authorised_at + validity) for order in orders]


def holds_digest_queue(
    *, holds: Iterable[tuple[Order, datetime]], day: date | None = None
) -> OutboundEmail | None:
    """One staff email listing card holds that expire soon; each order listed once a day."""
    entries = [
        (
            order.pk,
            {
                "number": str(order.number),
                "total": format_money(order.total),
                "expires_at": expires_at.isoformat(),
                "expires_display": formats.date_format(
                    timezone.localtime(expires_at), "DATETIME_FORMAT"
                ),
                "admin_url": admin_order_url(order),
            },
        )
        for order, expires_at in sorted(holds, key=lambda pair: pair[1])
    ]
    return email_queue_digest(
        kind=EmailKind.STAFF_AUTHORISATIONS_EXPIRING,
        to=settings.PHARMACY_STAFF_EMAIL,
        entries=entries,
        day=day,
    )


def expiring_holds_digest(*, now: datetime | None = None) -> OutboundEmail | None:
    """The periodic job: warn staff about holds that expire within the day."""
    return holds_digest_queue(holds=expiring_authorisations(now=now))
