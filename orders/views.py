"""The order page, its receipt and the Stripe webhook. Thin: the work is in ``orders.services``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

from django.conf import settings
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST, require_safe

from payments import stripe_gateway as gateway
from pharmacy.us_address import STATE_NAMES

from . import receipts, services, webhooks
from .carriers import tracking_url
from .links import LinkState
from .models import Order, OrderEvent, Shipment
from .prescription_step import OrderReview, prescription_step
from .state import OrderStatus, PaymentStatus

logger = logging.getLogger(__name__)


class LinkRefused(Exception):
    """A genuine order link that no longer opens the order (too old, or the order is in an account)."""

    def __init__(self, order: Order, state: LinkState):
        super().__init__(state.value)
        self.order = order
        self.state = state


def _order_for_viewer(request, number: int) -> tuple[Order, bool, str]:
    """The order, if this visitor may see it: its signed-in owner, or a holder of a fresh signed
    link to a guest order. Returns the order, whether the visitor owns it, and the link's token
    ("" for the owner, who needs none)."""
    order = Order.objects.filter(number=number).first()
    if order is None:
        raise Http404("No such order.")
    if request.user.is_authenticated and order.user_id == request.user.pk:
        return order, True, ""
    token = request.GET.get("t", "")
    state = services.order_link_check(order=order, token=token) if token else LinkState.INVALID
    if state is LinkState.INVALID:
        raise Http404("No such order.")
    if state is not LinkState.VALID:
        raise LinkRefused(order, state)
    return order, False, token


def _link_refused(request, refused: LinkRefused) -> HttpResponse:
    """Not "no such order": say why the link no longer opens it and what to do instead."""
    in_account = refused.state is LinkState.IN_ACCOUNT
    sign_in = f"{reverse('accounts:login')}?{urlencode({'next': refused.order.get_absolute_url()})}"
    return render(
        request,
        "orders/link_refused.html",
        {
            "order": refused.order,
            "in_account": in_account,
            "sign_in_url": sign_in,
            "link_days": settings.ORDER_LINK_MAX_AGE_DAYS,
        },
        status=403 if in_account else 410,
    )


@never_cache
@require_safe
def order_detail(request, number: int):
    try:
        order, owns, token = _order_for_viewer(request, number)
    except LinkRefused as refused:
        return _link_refused(request, refused)
    if order.status == OrderStatus.PENDING_PAYMENT and order.stripe_payment_intent_id:
        # The browser may just have come back from Stripe: ask Stripe, never the browser, but in
        # the worker, so a slow Stripe cannot hold this page. It shows "confirming" and reloads.
        _queue_payment_sync(order)
        order.refresh_from_db()  # a worker running in-process (no Redis) has already synced it
    lines = list(order.lines.all())
    shipment = Shipment.objects.filter(order=order).first()
    review = prescription_step().order_review(order=order)
    return render(
        request,
        "orders/order_detail.html",
        {
            "order": order,
            "lines": lines,
            "shipment": shipment,
            "tracking_url": tracking_url(carrier=shipment.carrier, number=shipment.tracking_number)
            if shipment
            else "",
            "timeline": customer_timeline(order, review=review),
            "headline": order_headline(order, review=review),
            "receipt_url": _receipt_url(order, token),
            # A guest holding the signed link may keep the order in an account (accounts.claim_order).
            "claim_token": token,
            "owns": owns,
            "state_name": STATE_NAMES.get(order.ship_state, order.ship_state),
            "OrderStatus": OrderStatus,
            "PaymentStatus": PaymentStatus,
            "payment_failed": order.status == OrderStatus.PENDING_PAYMENT
            and order.payment_status == PaymentStatus.FAILED,
            "payment_pending": order.status == OrderStatus.PENDING_PAYMENT
            and order.payment_status == PaymentStatus.PENDING,
            # Reload while a just-paid order is being confirmed; not for an order left unpaid.
            "auto_refresh": order.status == OrderStatus.PENDING_PAYMENT
            and order.payment_status == PaymentStatus.PENDING
            and order.created_at > timezone.now() - CONFIRMING_REFRESH_FOR,
            "cancel_note": order.status == OrderStatus.CANCELED
            and order.events.filter(
                kind=OrderEvent.Kind.STATUS, note__in=services.CANCELED_AFTER_AUTHORISATION_NOTES
            )
            .values_list("note", flat=True)
            .first(),
        },
    )


CONFIRMING_REFRESH_FOR = timedelta(minutes=15)


def _queue_payment_sync(order: Order) -> None:
    from pharmacy.celery import publish_bounded

    from .tasks import sync_payment

    try:  # bounded like every hand-off from a request (CELERY_PUBLISH_TIMEOUT, one try)
        publish_bounded(sync_payment, str(order.pk))
    except Exception:  # the reconciliation job catches up; the page still answers
        logger.warning("Could not queue the payment check of order %s", order.number, exc_info=True)


def _receipt_url(order: Order, token: str) -> str:
    url = reverse("orders:receipt", kwargs={"number": order.number})
    return f"{url}?t={quote(token)}" if token else url


def _receipt_order(request, number: int) -> tuple[Order, str]:
    """The order whose receipt this visitor may see: its owner, a holder of its signed link, or
    staff who may view orders. Raises Http404 (or LinkRefused) as the order page does."""
    if request.user.is_authenticated and request.user.has_perm("orders.view_order"):
        order = Order.objects.filter(number=number).first()
        if order is None:
            raise Http404("No such order.")
        return order, request.GET.get("t", "")
    order, _owns, token = _order_for_viewer(request, number)
    return order, token


def _receipt_or_refusal(request, number: int):
    """(receipt, None) for a paid order the visitor may see, else (None, the refusal to answer)."""
    try:
        order, _token = _receipt_order(request, number)
    except LinkRefused as refused:
        return None, _link_refused(request, refused)
    try:
        return receipts.receipt_for(order), None
    except receipts.NoReceipt as refusal:
        page = render(
            request,
            "orders/receipt_unavailable.html",
            {"order": order, "reason": str(refusal)},
            status=404,
        )
        return None, page


@never_cache
@require_safe
def order_receipt(request, number: int):
    """The FSA/HSA-ready receipt of a paid order (print CSS; the PDF link below it)."""
    receipt, refusal = _receipt_or_refusal(request, number)
    if refusal is not None:
        return refusal
    token = request.GET.get("t", "")
    pdf_url = reverse("orders:receipt_pdf", kwargs={"number": number})
    return render(
        request,
        "orders/receipt.html",
        {
            **receipts.receipt_page_context(receipt),
            "pdf_url": f"{pdf_url}?t={quote(token)}" if token else pdf_url,
        },
    )


@never_cache
@require_safe
def order_receipt_pdf(request, number: int):
    """The same receipt as a PDF file named after the order number only (never a medicine)."""
    receipt, refusal = _receipt_or_refusal(request, number)
    if refusal is not None:
        return refusal
    response = HttpResponse(receipts.receipt_pdf(receipt), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{receipt.filename}"'
    return response


@dataclass(frozen=True)
class Headline:
    """The order page's first words: what state the order is in, and what happens next."""

    title: str
    detail: str = ""
    warn: bool = False


def order_headline(order: Order, *, review: OrderReview) -> Headline:
    S, P = OrderStatus, PaymentStatus
    refunded = order.payment_status in (P.REFUNDED, P.PARTIALLY_REFUNDED)
    if refunded:
        return Headline(
            f"Refunded {order.amount_refunded}",
            "The refund goes back to the card you paid with; banks take a few days to show it.",
        )
    if order.status == S.CANCELED:
        if review.code == "rejected":
            return Headline(
                "Not approved",
                "Our pharmacist could not approve the prescription. Nothing was charged.",
                warn=True,
            )
        released = (
            " The hold on your card has been released."
            if order.payment_status == P.CANCELED
            else ""
        )
        return Headline("This order was canceled", released.strip(), warn=True)
    if order.status == S.AWAITING_REVIEW:
        if review.code == "information_requested":
            return Headline("Order received: our pharmacist needs more information", warn=True)
        return Headline(
            "Order received: awaiting pharmacist review",
            "Your card has been authorised but not charged. Our pharmacist will check your prescription; "
            "we charge your card and ship once it is approved.",
        )
    if order.status == S.READY_TO_SHIP:
        paid = order.payment_status == P.CAPTURED
        if review.code == "approved_with_changes":
            title = "Approved with changes and paid" if paid else "Approved with changes"
        elif review.code == "approved":
            title = "Approved and paid" if paid else "Approved"
        else:
            title = "Paid" if paid else "Order placed"
        return Headline(
            f"{title}: being prepared for shipping", f"We will email {order.email} when it ships."
        )
    if order.status == S.SHIPPED:
        return Headline("Shipped", "Your parcel is on its way; the tracking number is below.")
    if order.status == S.DELIVERED:
        return Headline("Delivered")
    return Headline(
        "Thank you, your order is placed", f"We will email {order.email} when it ships."
    )


def customer_timeline(order: Order, *, review: OrderReview | None = None) -> list[tuple]:
    """What happened to the order, in the customer's words: status and payment moves and the
    pharmacist's decisions, oldest first.

    Staff notes and stock bookkeeping stay in the admin; a pharmacist's reason for a decision is
    shown by the prescription section of the page.
    """
    events = order.events.filter(
        kind__in=(OrderEvent.Kind.PLACED, OrderEvent.Kind.STATUS, OrderEvent.Kind.PAYMENT)
    )
    timeline = []
    for event in events.order_by("created_at", "pk"):
        if event.kind == OrderEvent.Kind.PLACED:
            label = "Order placed"
        elif event.kind == OrderEvent.Kind.STATUS:
            label = OrderStatus(event.to_status).label
        else:
            label = f"Payment: {PaymentStatus(event.to_status).label.lower()}"
        timeline.append((event.created_at, label))
    # A decision goes right after the "awaiting review" it ended (its record is written after the
    # capture or release it caused, so its own time would put it after the payment).
    decisions = review.decisions if review else ()
    said = {label for _, label in decisions}
    for decided_at, label in decisions:
        waiting = [
            i
            for i, (when, shown) in enumerate(timeline)
            if shown == OrderStatus.AWAITING_REVIEW.label and when <= decided_at
        ]
        position = waiting[-1] + 1 if waiting else len(timeline)
        while position < len(timeline) and timeline[position][1] in said:
            position += 1  # after earlier decisions on the same wait (a question, then an approval)
        timeline.insert(position, (decided_at, label))
    return timeline


@csrf_exempt
@require_POST
@transaction.non_atomic_requests
def stripe_webhook(request):
    """Stripe's deliveries: verified, logged once per event id, acknowledged, acted on in a task.

    No Stripe call and no email before answering (``orders.webhooks``): the answer comes in
    milliseconds, whatever Stripe or the mail server are doing.
    """
    try:
        event = gateway.construct_webhook_event(
            payload=request.body, signature_header=request.headers.get("Stripe-Signature", "")
        )
    except gateway.WebhookSignatureError as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain")
    except gateway.WebhookPayloadError as exc:
        webhooks.stripe_malformed_record(body=request.body, reason=str(exc))
        return HttpResponse(
            f"Not a well-formed event: {exc}", status=400, content_type="text/plain"
        )
    problem = webhooks.stripe_event_problem(event=event)
    if problem:
        return HttpResponse(f"Event not accepted: {problem}", status=400, content_type="text/plain")
    record, needs_processing = webhooks.stripe_event_record(event=event)
    if not needs_processing:
        return HttpResponse("Already processed.", content_type="text/plain")
    from .tasks import stripe_event_queue

    stripe_event_queue(record=record)
    return HttpResponse("Queued.", content_type="text/plain")
