"""Checkout, the order page and the Stripe webhook. Thin: the work is in ``orders.services``."""
from __future__ import annotations

import logging

from django.conf import settings
from django.contrib import messages
from django.db import IntegrityError, transaction
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from cart.pricing import cart_summary
from cart.services import cart_for_request
from notifications.services import tracking_url

from . import services
from . import stripe_gateway as gateway
from .forms import STATE_NAMES, CheckoutForm
from .prescription_forms import prescription_form_for
from .models import Order, OrderEvent, Shipment, StripeEvent
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
    cart = cart_for_request(request, create=False)
    summary = cart_summary(cart)
    if summary.is_empty and not summary.unavailable_lines:
        if _wants_json(request):
            return JsonResponse({"message": "Your cart is empty."}, status=400)
        messages.info(request, "Your cart is empty. Add a medicine before checking out.")
        return redirect("cart:detail")

    user = request.user if request.user.is_authenticated else None
    initial = {"email": user.email, "name": user.get_full_name()} if user else {}
    form = CheckoutForm(request.POST or None, initial=initial)
    # Issue #16 hook: refill lines are verified against the prescription on file, not asked about again.
    from .prescription_records import cart_refills, checkout_lines_needing_prescription, reminder_consent_from_checkout

    refills_in_cart = cart_refills(cart)
    rx_lines = checkout_lines_needing_prescription(cart=cart, lines=summary.available_lines)
    rx_form = prescription_form_for(request, lines=rx_lines, user=user)  # None without Rx items
    error = ""
    if request.method == "POST":
        if all([form.is_valid(), rx_form is None or rx_form.is_valid()]):
            data = form.cleaned_data
            if not _wants_json(request):
                error = "Card payment needs JavaScript. Please enable it in your browser and try again."
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
                        prescription=rx_form.intake() if rx_form else None,
                    )
                except services.OrderError as exc:
                    error = exc.message
                else:
                    reminder_consent_from_checkout(user=user, agreed=request.POST.get("refill_reminders") == "on")
                    return JsonResponse(
                        {
                            "order_number": placed.order.number,
                            "client_secret": placed.client_secret,
                            "return_url": request.build_absolute_uri(services.order_link(placed.order)),
                            "billing_name": placed.order.ship_name,
                            "email": placed.order.email,
                        }
                    )
        else:
            error = "Please correct the highlighted fields."
        if _wants_json(request):
            errors = {**form.errors.get_json_data(), **(rx_form.errors.get_json_data() if rx_form else {})}
            return JsonResponse({"message": error, "errors": errors}, status=400)
    context = {
        "form": form,
        "rx_form": rx_form,
        "refills_in_cart": refills_in_cart,
        "summary": summary,
        "error": error,
        "express_surcharge": services.EXPRESS_SURCHARGE,
        "licensed_states": ", ".join(STATE_NAMES.get(s, s) for s in settings.PHARMACY_LICENSED_STATES),
        **_stripe_context(),
    }
    return render(request, "orders/checkout.html", context, status=400 if error else 200)


@never_cache
@require_safe
def order_detail(request, number: int):
    order = Order.objects.filter(number=number).first()
    if order is None:
        raise Http404("No such order.")
    owns = request.user.is_authenticated and order.user_id == request.user.pk
    token = request.GET.get("t", "")
    if not owns and not (token and services.order_token_is_valid(order=order, token=token)):
        raise Http404("No such order.")
    if order.status == OrderStatus.PENDING_PAYMENT and order.stripe_payment_intent_id:
        # The browser just came back from Stripe: ask Stripe, do not trust the browser.
        try:
            order = services.order_sync_payment(order_id=order.pk)
        except (gateway.PaymentGatewayError, services.OrderError):
            logger.warning("Could not sync order %s on its page", order.number, exc_info=True)
    lines = list(order.lines.all())
    shipment = Shipment.objects.filter(order=order).first()
    return render(
        request,
        "orders/order_detail.html",
        {
            "order": order,
            "lines": lines,
            "shipment": shipment,
            "tracking_url": tracking_url(carrier=shipment.carrier, number=shipment.tracking_number) if shipment else "",
            "timeline": customer_timeline(order),
            # A guest holding the signed link may keep the order in an account (accounts.claim_order).
            "claim_token": token if order.user_id is None and not owns else "",
            "state_name": STATE_NAMES.get(order.ship_state, order.ship_state),
            "OrderStatus": OrderStatus,
            "PaymentStatus": PaymentStatus,
            "payment_failed": order.status == OrderStatus.PENDING_PAYMENT and order.payment_status == PaymentStatus.FAILED,
            "payment_pending": order.status == OrderStatus.PENDING_PAYMENT and order.payment_status == PaymentStatus.PENDING,
        },
    )


def customer_timeline(order: Order) -> list[tuple]:
    """What happened to the order, in the customer's words: status and payment moves only.

    Staff notes and stock bookkeeping stay in the admin; a pharmacist's reason for a decision is
    shown by the prescription section of the page.
    """
    events = order.events.filter(kind__in=(OrderEvent.Kind.PLACED, OrderEvent.Kind.STATUS, OrderEvent.Kind.PAYMENT))
    timeline = []
    for event in events.order_by("created_at", "pk"):
        if event.kind == OrderEvent.Kind.PLACED:
            label = "Order placed"
        elif event.kind == OrderEvent.Kind.STATUS:
            label = OrderStatus(event.to_status).label
        else:
            label = f"Payment: {PaymentStatus(event.to_status).label.lower()}"
        timeline.append((event.created_at, label))
    return timeline


HANDLED_EVENTS = frozenset(
    {
        "payment_intent.succeeded",
        "payment_intent.amount_capturable_updated",
        "payment_intent.payment_failed",
        "payment_intent.canceled",
        "charge.refunded",
    }
)


def _order_for_event(obj: dict) -> Order | None:
    order_id = (obj.get("metadata") or {}).get("order_id")
    if order_id:
        order = Order.objects.filter(pk=order_id).first() if _is_uuid(order_id) else None
        if order is not None:
            return order
    intent_id = obj.get("id") if obj.get("object") == "payment_intent" else obj.get("payment_intent")
    if isinstance(intent_id, dict):
        intent_id = intent_id.get("id")
    return Order.objects.filter(stripe_payment_intent_id=intent_id).first() if intent_id else None


def _is_uuid(value: str) -> bool:
    import uuid

    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


@csrf_exempt
@require_POST
@transaction.non_atomic_requests
def stripe_webhook(request):
    """Stripe's deliveries: verified, logged once per event id, acted on through the sync service."""
    try:
        event = gateway.construct_webhook_event(
            payload=request.body, signature_header=request.headers.get("Stripe-Signature", "")
        )
    except gateway.WebhookSignatureError as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain")
    event_id, event_type = event.get("id"), event.get("type", "")
    if not event_id:
        return HttpResponse("Event has no id.", status=400, content_type="text/plain")
    try:
        record, created = StripeEvent.objects.get_or_create(
            event_id=event_id, defaults={"type": event_type, "payload": event}
        )
    except IntegrityError:  # the same event delivered twice at once
        return HttpResponse("Duplicate delivery.", content_type="text/plain")
    if record.processed:
        return HttpResponse("Already processed.", content_type="text/plain")

    try:
        if event_type in HANDLED_EVENTS:
            order = _order_for_event(event.get("data", {}).get("object", {}))
            if order is not None:
                services.order_sync_payment(order_id=order.pk)
    except Exception as exc:  # noqa: BLE001 - logged on the event row; Stripe will retry
        logger.exception("Stripe event %s failed", event_id)
        StripeEvent.objects.filter(pk=record.pk).update(error=f"{type(exc).__name__}: {exc}"[:2000])
        return HttpResponse("Processing failed; please retry.", status=503, content_type="text/plain")
    StripeEvent.objects.filter(pk=record.pk).update(processed=True, error="", processed_at=timezone.now())
    return HttpResponse("OK", content_type="text/plain")
