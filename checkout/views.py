"""The checkout page: its totals for the address as typed, the discount code box, and "Pay".

Thin: the figures come from ``cart.calculations`` (through ``cart_summary`` with
``order_pricing_inputs``), placing is ``checkout.placement.order_place``, and the prescription
part of the page is asked of the prescription step orders defines.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from cart.calculations import EXPRESS_SURCHARGE
from cart.presentation import shown_lines, shown_totals
from cart.pricing import cart_summary, format_money
from cart.services import (
    CartError,
    cart_and_lines_for_request,
    cart_apply_discount_code,
    cart_remove_discount_code,
)
from orders.errors import OrderError
from orders.links import order_link
from orders.models import ShippingMethod
from orders.prescription_step import prescription_step
from pharmacy.us_address import ZipCodeField, zip_state_problem

from .figures import CheckoutChanged, checkout_figures
from .forms import STATE_NAMES, CheckoutForm, shipping_address
from .placement import order_place
from .pricing_inputs import order_pricing_inputs


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
            "checkout/_checkout_totals.html",
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
                    placed = order_place(
                        cart=cart,
                        email=data["email"],
                        address=shipping_address(data),
                        shipping_method=data["shipping_method"],
                        user=user,
                        prescription=rx.intake(),
                        shown_figures=request.POST.get("figures", ""),
                    )
                except CheckoutChanged as exc:
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
                except OrderError as exc:
                    error = exc.message
                else:
                    step.checkout_placed(request, order=placed.order, user=user)
                    return JsonResponse(
                        {
                            "order_number": placed.order.number,
                            "client_secret": placed.client_secret,
                            "return_url": request.build_absolute_uri(order_link(placed.order)),
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
        "express_surcharge": EXPRESS_SURCHARGE,
        "licensed_states": ", ".join(
            STATE_NAMES.get(s, s) for s in settings.PHARMACY_LICENSED_STATES
        ),
        **_totals_context(summary, pricing),
        **_stripe_context(),
    }
    # The body through Jinja2 (the page's hottest markup), the layout around it as every page's.
    # The CSRF token masked once, for the form and the layout's htmx header alike.
    body["page_csrf_token"] = csrf_token = get_token(request)
    checkout_body = render_to_string("checkout/checkout_body.html", body, request, using="pages")
    context = {
        "csrf_token": csrf_token,  # in place of the context processor's own (a second mask)
        "checkout_body": mark_safe(checkout_body),  # our own template's output, escaped by it
        # The header count from the summary already loaded: no query from the context processor.
        "cart_count": summary.item_count,
        **_stripe_context(),
    }
    return render(
        request, "checkout/checkout.html", context, status=400 if error or code_refused else 200
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
    """What ``checkout/_checkout_totals.html`` prints: the summary's figures, the signed snapshot
    of them that "Pay" carries back, and what they were computed for."""
    return {
        "summary": summary,
        "shown_totals": shown_totals(summary),
        "figures": checkout_figures(summary),
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
