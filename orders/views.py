"""Checkout, the order page and the Stripe webhook. Thin: the work is in ``orders.services``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.middleware.csrf import get_token
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from cart.presentation import shown_lines, shown_totals
from cart.pricing import cart_summary, format_money
from cart.services import (
    CartError,
    cart_and_lines_for_request,
    cart_apply_discount_code,
    cart_remove_discount_code,
)
from pharmacy.us_address import ZipCodeField, zip_state_problem

from . import receipts, services, webhooks
from . import stripe_gateway as gateway
from .carriers import tracking_url
from .forms import STATE_NAMES, CheckoutForm
from .links import LinkState
from .models import Order, OrderEvent, Shipment, ShippingMethod
from .prescription_step import OrderReview, prescription_step
from .pricing_inputs import order_pricing_inputs
from .state import OrderStatus, PaymentStatus

logger = logging.getLogger(__name__)


def _wants_json(request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _stripe_context() -> dict:
    return {
        "stripe_publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
        "stripe_js_url": settings.STRIPE_JS_URL,
        # The adapter makes localstripe's mock behave like Stripe.js; never loaded for real Stripe.
        "use_localstripe_adapter": bool(settings.STRIPE_API_BASE),
    }


@never_cache  # allergies, current medicines, the address
@require_http_methods(["GET", "HEAD", "POST"])
def checkout(request):
    """The checkout page, its totals for the address as typed, and "Pay".

    A POST is one of four things: htmx asking for the totals of the address and shipping method
    typed so far (a fragment); "Update total" without JavaScript (the whole page again, every
    typed field kept); "Apply"/"Remove code" (the same page again, priced with or without the
    code, so nothing typed is lost); or "Pay" from ``checkout.js`` (JSON), which carries the
    signed figures the page showed and places the order only if the server's figures are the same.
    """
    step = prescription_step()
    # The cart, its lines and what the prescription step reads of them (refills) in one query.
    cart, lines = cart_and_lines_for_request(request, select_related=step.cart_line_relations)
    code_step = _code_step(request)
    code_message, code_refused = "", False
    if code_step in ("apply", "remove"):
        code_message, code_refused = _code_change(request, cart=cart, step=code_step)
        # Priced again with the code as it is now stored, so Pay carries the figures shown.
        cart, lines = cart_and_lines_for_request(request, select_related=step.cart_line_relations)
    data = request.POST if request.method == "POST" else request.GET
    pricing = _pricing_address(data)
    summary = _checkout_summary(cart, lines, pricing)
    if summary.is_empty and not summary.unavailable_lines:
        if _wants_json(request) or _is_htmx(request):
            return JsonResponse({"message": "Your cart is empty."}, status=400)
        messages.info(request, "Your cart is empty. Add a medicine before checking out.")
        return redirect("cart:detail")
    if request.method == "POST" and _is_htmx(request):
        return render(
            request,
            "orders/_checkout_totals.html",
            _totals_context(summary, pricing, oob=True),
            using="pages",
        )

    user = request.user if request.user.is_authenticated else None
    initial = {"email": user.email, "name": user.get_full_name()} if user else {}
    # The patient and prescriptions to ask for, refills' checks, the last address shipped to.
    rx = step.checkout(request, user=user, lines=lines, summary=summary)
    initial.update(rx.address)
    if request.method != "POST" and rx.address:
        # The page opens with the last address shipped to: its totals are those of that address.
        pricing = _pricing_address({**rx.address, "shipping_method": ShippingMethod.STANDARD})
        summary = _checkout_summary(cart, lines, pricing)
    form = CheckoutForm(request.POST or None, initial=initial)
    rx_form = rx.form  # None when no line needs a prescription
    error = ""
    if (
        request.method == "POST"
        and ("update" in request.POST or code_step)
        and not _wants_json(request)
    ):
        # "Update total" without JavaScript: the page again with what was typed, and only the
        # address's own problems (a ZIP outside the state), not "required" on fields not reached yet.
        _only_address_errors(form)
        if rx_form is not None:
            rx_form.errors.clear()
    elif request.method == "POST":
        if all([form.is_valid(), rx_form is None or rx_form.is_valid()]):
            data = form.cleaned_data
            if not _wants_json(request):
                error = (
                    "Card payment needs JavaScript. Please enable it in your browser and try again."
                )
            else:
                try:
                    placed = services.order_place(
                        cart=cart,
                        email=data["email"],
                        address=services.ShippingAddress(
                            name=data["name"],
                            line1=data["line1"],
                            line2=data["line2"],
                            city=data["city"],
                            state=data["state"],
                            zip_code=data["zip_code"],
                        ),
                        shipping_method=data["shipping_method"],
                        user=user,
                        prescription=rx.intake(),
                        shown_figures=request.POST.get("figures", ""),
                    )
                except services.CheckoutChanged as exc:
                    # Nothing placed: the customer sees what moved and confirms the new figures.
                    return JsonResponse(
                        {
                            "message": exc.message,
                            "changes": [str(change) for change in exc.changes],
                            "figures": exc.figures,
                            "total": format_money(exc.total),
                        },
                        status=409,
                    )
                except services.OrderError as exc:
                    error = exc.message
                else:
                    step.checkout_placed(request, order=placed.order, user=user)
                    return JsonResponse(
                        {
                            "order_number": placed.order.number,
                            "client_secret": placed.client_secret,
                            "return_url": request.build_absolute_uri(
                                services.order_link(placed.order)
                            ),
                            "billing_name": placed.order.ship_name,
                            "email": placed.order.email,
                        }
                    )
        else:
            error = "Please correct the highlighted fields."
        if _wants_json(request):
            errors = {
                **form.errors.get_json_data(),
                **(rx_form.errors.get_json_data() if rx_form else {}),
            }
            return JsonResponse({"message": error, "errors": errors}, status=400)
    body = {
        "user": request.user,
        "form": form,
        "rx_form": rx_form,
        "rx_blocked": rx.blocked,
        **rx.context,
        "error": error,
        "code_message": code_message,
        "code_refused": code_refused,
        "express_surcharge": services.EXPRESS_SURCHARGE,
        "licensed_states": ", ".join(
            STATE_NAMES.get(s, s) for s in settings.PHARMACY_LICENSED_STATES
        ),
        **_totals_context(summary, pricing),
        **_stripe_context(),
    }
    # The body through Jinja2 (the page's hottest markup), the layout around it as every page's.
    # The CSRF token masked once, for the form and the layout's htmx header alike.
    body["page_csrf_token"] = csrf_token = get_token(request)
    checkout_body = render_to_string("orders/checkout_body.html", body, request, using="pages")
    context = {
        "csrf_token": csrf_token,  # in place of the context processor's own (a second mask)
        "checkout_body": mark_safe(checkout_body),  # our own template's output, escaped by it
        # The header count from the summary already loaded: no query from the context processor.
        "cart_count": summary.item_count,
        **_stripe_context(),
    }
    return render(
        request, "orders/checkout.html", context, status=400 if error or code_refused else 200
    )


def _code_step(request) -> str:
    """ "apply", "remove", "update" (the code buttons of a whole-page POST) or "".

    Pressing Enter in an address field presses the form's first submit button, which is "Apply"
    (the summary comes before the form): with the code box empty that is "Update total".
    """
    if request.method != "POST" or _wants_json(request) or _is_htmx(request):
        return ""
    if "remove_code" in request.POST:
        return "remove"
    if "apply_code" in request.POST:
        return "apply" if request.POST.get("code", "").strip() else "update"
    return ""


def _code_change(request, *, cart, step: str) -> tuple[str, bool]:
    """Apply or remove the discount code; the message to show beside the code box, and whether it was refused."""
    try:
        if step == "remove":
            return cart_remove_discount_code(cart=cart).message, False
        return cart_apply_discount_code(cart=cart, code=request.POST.get("code", "")).message, False
    except CartError as refused:
        return refused.message, True


def _is_htmx(request) -> bool:
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.boosted


@dataclass(frozen=True)
class PricingAddress:
    """What the checkout's totals are computed for: the state (only once its ZIP agrees), the
    shipping method, the ZIP's problem if any, and the raw fields as typed (``typed``: the page
    says which input its totals belong to, so ``checkout.js`` can tell whether they are current)."""

    state: str
    method: str
    zip_problem: str
    typed: str


def _pricing_address(data) -> PricingAddress:
    state = data.get("state", "")
    zip_code = data.get("zip_code", "")
    method = data.get("shipping_method", "")
    typed = f"{state}|{zip_code}|{method or ShippingMethod.STANDARD}"
    if method not in ShippingMethod.values:
        method = ShippingMethod.STANDARD
    if state not in settings.PHARMACY_LICENSED_STATES:
        return PricingAddress(state="", method=method, zip_problem="", typed=typed)
    problem = ""
    try:
        zip_code = ZipCodeField(required=False).clean(zip_code)
    except ValidationError:
        zip_code = ""  # not a whole ZIP yet: the state alone prices the order until Pay checks both
    if zip_code:
        problem = zip_state_problem(zip_code=zip_code, state=state)
    return PricingAddress(
        state="" if problem else state, method=method, zip_problem=problem, typed=typed
    )


def _checkout_summary(cart, lines, pricing: PricingAddress):
    """The cart priced for the state and shipping method entered so far (posted, or ``?state=``),
    through the same inputs ``order_place`` uses: the tax shown is the tax charged."""
    return cart_summary(
        cart,
        lines=lines,
        method=pricing.method,
        **order_pricing_inputs(cart=cart, state=pricing.state),
    )


def _totals_context(summary, pricing: PricingAddress, *, oob: bool = False) -> dict:
    """What ``orders/_checkout_totals.html`` prints: the summary's figures, the signed snapshot
    of them that "Pay" carries back, and what they were computed for."""
    return {
        "summary": summary,
        "shown_totals": shown_totals(summary),
        "figures": services.checkout_figures(summary),
        "pricing": pricing,
        "pricing_state_name": STATE_NAMES.get(pricing.state, ""),
        "express": pricing.method == ShippingMethod.EXPRESS,
        "oob": oob,
        "shown_available_lines": shown_lines(summary.available_lines),
    }


def _only_address_errors(form) -> None:
    """Keep the errors of the state and ZIP fields other than "required"; drop the rest."""
    for name, errors in list(form.errors.as_data().items()):
        if name in ("state", "zip_code") and any(error.code != "required" for error in errors):
            continue
        del form.errors[name]
        if name in form.fields:
            form.fields[name].widget.attrs.pop("aria-invalid", None)


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
