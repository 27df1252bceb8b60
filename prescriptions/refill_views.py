"""Pages for prescriptions on file (issue #16): the customer's "My prescriptions", refill to cart,
reminder settings, "Order again", and the pharmacist's record / refill decisions.

Thin: the rules are in ``prescriptions.refill_rules`` and the modules beside it. Customer pages need an account (a guest
is sent to sign in and sees nothing) and only ever show the signed-in customer's own records.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from cart.services import cart_for_request
from orders.models import Order
from orders.services import order_token_is_valid

from . import on_file, refill_cart, refill_review, refill_rules, reminders, reorder
from .decisions import ReviewError
from .forms import OneTimeForm
from .models import PrescriptionOnFile, RefillReminderSettings, ReviewAction
from .refill_forms import RefillRefuseForm, ReminderSettingsForm
from .review_views import pharmacist_required


@never_cache
@require_safe
@login_required
def my_prescriptions(request):
    rows = []
    for record in on_file.prescriptions_for_user(request.user):
        rows.append(
            {"record": record, "checks": refill_rules.refill_checks(record), "fills": record.fills}
        )
    settings_row = reminders.reminder_settings_for(request.user)
    return render(
        request,
        "prescriptions/refills/list.html",
        {"rows": rows, "reminder_settings": settings_row},
    )


@never_cache
@require_safe
@login_required
def prescription_detail(request, pk: int):
    record = get_object_or_404(
        PrescriptionOnFile.objects.select_related("dosage__product"), pk=pk, user=request.user
    )
    fills = list(record.events.filter(kind="fill").select_related("order").order_by("-created_at"))
    return render(
        request,
        "prescriptions/refills/detail.html",
        {
            "record": record,
            "checks": refill_rules.refill_checks(record),
            "packs": refill_rules.refill_packs(record),
            "fills": fills,
        },
    )


@never_cache
@require_POST
@login_required
def refill(request, pk: int):
    cart = cart_for_request(request, create=True)
    try:
        refill_cart.refill_add_to_cart(
            cart=cart, user=request.user, record_id=pk, tier_id=request.POST.get("tier_id")
        )
    except refill_rules.RefillError as exc:
        messages.error(request, exc.message)
        if not PrescriptionOnFile.objects.filter(pk=pk, user=request.user).exists():
            raise Http404("No such prescription on file.") from None
        return redirect("refills:detail", pk=pk)
    messages.success(
        request,
        "The refill is in your cart. Check out to send it to our pharmacist; no new prescription is needed.",
    )
    return redirect("cart:detail")


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
@login_required
def reminder_settings(request):
    current = reminders.reminder_settings_for(request.user)
    initial = (
        {"reminders": current.reminders, "name_medicine": current.name_medicine} if current else {}
    )
    form = ReminderSettingsForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method == "POST" and form.is_valid():
        RefillReminderSettings.objects.update_or_create(
            user=request.user, defaults=form.cleaned_data
        )
        messages.success(request, "Your reminder settings are saved.")
        return redirect("refills:list")
    return render(
        request,
        "prescriptions/refills/reminders.html",
        {"form": form},
        status=400 if form.errors else 200,
    )


@never_cache
@require_POST
def order_again(request, number: int):
    order = Order.objects.filter(number=number).first()
    owns = order is not None and request.user.is_authenticated and order.user_id == request.user.pk
    if order is None or not (
        owns or order_token_is_valid(order=order, token=request.POST.get("t", ""))
    ):
        raise Http404("No such order.")
    cart = cart_for_request(request, create=True)
    added, skipped = reorder.order_again(order=order, cart=cart)
    if added:
        messages.success(request, f"Added to your cart: {'; '.join(added)}.")
    if skipped:
        messages.info(
            request,
            f"Not added: {'; '.join(skipped)}. Prescription medicines need a prescription, or a refill from "
            "“My prescriptions” in your account.",
        )
    return redirect("cart:detail")


# --- The pharmacist ----------------------------------------------------------------------------


def _decide(request, number: int, form, action, success: str, refused: str = ""):
    order = get_object_or_404(Order, number=number)
    if form.is_valid():
        try:
            review = action(order, form)
        except ReviewError as exc:
            messages.error(request, exc.message)
        else:
            if refused and review.action == ReviewAction.REJECTED:
                # The re-check on the locked prescription failed (e.g. another refill took the last one).
                messages.warning(request, refused.format(number=order.number, reason=review.note))
            else:
                messages.success(request, success.format(number=order.number))
            return redirect("prescriptions:review_queue")
    else:
        messages.error(
            request,
            "Please correct the prescription details: "
            + "; ".join(
                f"{form.fields[name].label if name in form.fields else ''} {' '.join(errors)}".strip()
                for name, errors in form.errors.items()
            ),
        )
    return redirect("prescriptions:review_order", number=number)


@never_cache
@require_POST
@pharmacist_required
def refill_approve(request, number: int):
    return _decide(
        request,
        number,
        OneTimeForm(request.POST),
        lambda order, form: refill_review.refill_approve(
            order=order, by=request.user, submission_key=form.cleaned_data["submission_key"]
        ),
        "Refill order {number} approved; the payment has been captured and the refills counted.",
        refused="Refill order {number} was not approved, nothing was charged and the hold was released: {reason}",
    )


@never_cache
@require_POST
@pharmacist_required
def refill_refuse(request, number: int):
    return _decide(
        request,
        number,
        RefillRefuseForm(request.POST),
        lambda order, form: refill_review.refill_refuse(
            order=order,
            by=request.user,
            reason=form.cleaned_data["reason"],
            submission_key=form.cleaned_data["submission_key"],
        ),
        "Refill order {number} refused; the card hold was released and the customer told why.",
    )
