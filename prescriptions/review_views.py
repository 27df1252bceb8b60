"""The pharmacist's pages (``/staff/review/``) and the permission-checked prescription files.

Thin: decisions are made in ``prescriptions.decisions``, shipping in ``orders.fulfilment``. Every action is a POST with CSRF; a
customer or other staff member gets 403, a signed-out visitor is sent to sign in.
"""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from orders import fulfilment, holds
from orders.models import Order, OrderEvent
from orders.services import OrderError, order_token_is_valid
from orders.state import OrderStatus, PaymentStatus
from pharmacy.second_factor import second_factor_required

from . import decisions, on_file_record, queue, refill_cart
from .files import INLINE_TYPES
from .forms import RejectForm, RequestInformationForm, ShipForm
from .models import Prescription
from .refill_forms import ApproveOrderForm, PacksForm


def pharmacist_required(view):
    """Signed in, past the second factor (asked of anyone with staff rights), a pharmacist."""

    @wraps(view)
    @second_factor_required
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not queue.is_pharmacist(request.user):
            raise PermissionDenied("Only pharmacists can review prescription orders.")
        return view(request, *args, **kwargs)

    return wrapper


def _time_left(order, now) -> dict:
    expires = queue.hold_expires_at(order)
    left = expires - now
    seconds = int(left.total_seconds())
    if seconds <= 0:
        text = "expired"
    else:
        days, rest = divmod(seconds, 86400)
        hours = rest // 3600
        text = f"{days} d {hours} h left" if days else f"{hours} h {(rest % 3600) // 60} min left"
    return {"expires_at": expires, "text": text, "urgent": seconds < 24 * 3600}


def _decorate(orders, now):
    for order in orders:
        order.hold = _time_left(order, now)
        reviews = list(order.reviews.all())
        order.latest_review = reviews[-1] if reviews else None
    return orders


@never_cache
@require_safe
@pharmacist_required
def review_queue(request):
    now = timezone.now()
    orders = _decorate(list(queue.review_queue()), now)
    shipping = list(fulfilment.ready_to_ship())
    # Issue #16 hook: refills are listed apart, with their checks; and the refills due this week.
    from .refill_review import refills_due, review_queue_split

    orders, refills = review_queue_split(orders)
    return render(
        request,
        "prescriptions/review/queue.html",
        {
            "orders": orders,
            "refills": refills,
            "refills_due": refills_due(),
            "shipping": shipping,
            "ship_form": ShipForm(),
        },
    )


def _review_order(number: int) -> Order:
    order = (
        holds.with_authorised_at(Order.objects.filter(number=number))
        .select_related("patient", "user")
        .prefetch_related("lines", "prescriptions", "reviews__by", "events__by")
        .first()
    )
    if order is None:
        raise Http404("No such order.")
    return order


def _event_text(event: OrderEvent) -> str:
    """An order event in words: labels, not the stored status codes."""
    choices = {OrderEvent.Kind.STATUS: OrderStatus, OrderEvent.Kind.PAYMENT: PaymentStatus}.get(
        event.kind
    )

    def label(code: str) -> str:
        try:
            return choices(code).label if choices and code else code
        except ValueError:
            return code

    if event.from_status or event.to_status:
        moved = (
            f"{label(event.from_status)} → {label(event.to_status)}"
            if event.from_status
            else label(event.to_status)
        )
        return f"{event.get_kind_display()}: {moved}"
    return event.get_kind_display()


def _approve_form(order, lines, refill_line_ids, *, data=None, initial=None) -> ApproveOrderForm:
    return ApproveOrderForm(
        data, order=order, lines=lines, refill_line_ids=refill_line_ids, initial=initial or {}
    )


def _capture_preview(order, lines, data) -> dict:
    """What approving with the packs in ``data`` (None: as ordered) captures, from the server's
    calculation; ``None`` while a pack count is not valid (the button then names no amount)."""
    packs = PacksForm(data, lines=lines) if data is not None else None
    if packs is not None and not packs.is_valid():
        return {"capture": None}
    approved = packs.approved_packages() if packs is not None else {}
    if approved and not any(approved.values()):
        return {
            "capture": None,
            "capture_refusal": "Every item is set to 0: use “Do not approve” to refuse the order instead.",
        }
    capture = decisions.approval_capture(order=order, lines=lines, approved_packages=approved)
    return {"capture": capture, "capture_changed": capture != order.total}


def _render_review(request, order, *, status=200, top_error="", approve_data=None, **forms):
    now = timezone.now()
    order.hold = _time_left(order, now)
    lines = list(order.lines.all())
    events = list(order.events.all())
    for event in events:
        event.text = _event_text(event)
    refill_line_ids = refill_cart.refill_line_ids(order)
    approve_form = forms.get("approve_form")
    if approve_form is None:
        # A preview keeps what was typed (as initial values: no "required" errors before Approve).
        approve_form = _approve_form(
            order, lines, refill_line_ids, initial=approve_data.dict() if approve_data else None
        )
    context = {
        "order": order,
        "top_error": top_error,
        "lines": lines,
        "reviews": list(order.reviews.all()),
        "events": events,
        "in_review": order.status == OrderStatus.AWAITING_REVIEW,
        # A refill order shows only the refill decision (prescriptions/refills/_review_panel.html).
        "is_refill": bool(refill_line_ids),
        "approve_form": approve_form,
        "reject_form": forms.get("reject_form") or RejectForm(),
        "info_form": forms.get("info_form") or RequestInformationForm(),
        "ship_form": forms.get("ship_form") or ShipForm(),
        **_capture_preview(
            order,
            lines,
            approve_data
            if approve_data is not None
            else (approve_form.data if approve_form.is_bound else None),
        ),
    }
    # Several forms on one page: ids per form, so a label never focuses another form's box.
    for name in ("approve_form", "reject_form", "info_form", "ship_form"):
        context[name].auto_id = f"{name.removesuffix('_form')}-%s"
    return render(request, "prescriptions/review/order.html", context, status=status)


@never_cache
@require_safe
@pharmacist_required
def review_order(request, number: int):
    return _render_review(request, _review_order(number))


def _act(request, number, form_class, form_name, action, *, success, form_kwargs=None):
    order = get_object_or_404(Order, number=number)
    form = form_class(request.POST, **(form_kwargs(order) if form_kwargs else {}))
    if form.is_valid():
        try:
            action(order, form)
        except OrderError as exc:  # a review decision or a shipment refused, with its reason
            form.add_error(None, exc.message)
        else:
            messages.success(request, success.format(number=order.number))
            return redirect("prescriptions:review_queue")
    order = _review_order(number)
    shown = (
        order.status == OrderStatus.READY_TO_SHIP
        if form_name == "ship_form"
        else order.status == OrderStatus.AWAITING_REVIEW
    )
    # The form is not on the page any more (the order moved on): say why at the top.
    top_error = "" if shown else " ".join(form.non_field_errors())
    return _render_review(request, order, status=400, top_error=top_error, **{form_name: form})


@never_cache
@require_POST
@pharmacist_required
def review_approve(request, number: int):
    """The one approval of a new prescription order: as ordered or with fewer packs, and the
    prescription kept on file. "Update the amount" (no JavaScript) shows the page again with the
    server's amount for the packs entered; "Approve and charge <amount>" captures that amount."""
    order = get_object_or_404(Order, number=number)
    if "preview" in request.POST:
        return _render_review(request, _review_order(number), approve_data=request.POST)
    lines = list(order.lines.all())
    form = _approve_form(order, lines, refill_cart.refill_line_ids(order), data=request.POST)
    if form.is_valid():
        try:
            review = on_file_record.prescription_approve_and_record(
                order=order,
                by=request.user,
                records=form.records(),
                note=form.cleaned_data["note"],
                submission_key=form.cleaned_data["submission_key"],
                approved_packages=form.approved_packages(),
                shown_capture=form.shown_capture_money(),
            )
        except decisions.CaptureChanged as exc:
            # Nothing captured: show the page again with the new amount on the button.
            return _render_review(
                request,
                _review_order(number),
                status=409,
                top_error=exc.message,
                approve_data=request.POST,
            )
        except OrderError as exc:
            form.add_error(None, exc.message)
        else:
            kept = " and its prescription kept on file" if form.lines else ""
            messages.success(
                request,
                f"Order {order.number} approved{kept}; {review.approved_total} has been captured.",
            )
            return redirect("prescriptions:review_queue")
    if set(form.errors) == {"shown_capture"}:
        # Only the amount is missing (or not a number): nothing captured; show it and ask again.
        message = "Nothing was charged: check the amount on the button, then approve again."
        return _render_review(
            request, _review_order(number), status=409, top_error=message, approve_data=request.POST
        )
    order = _review_order(number)
    top_error = (
        "" if order.status == OrderStatus.AWAITING_REVIEW else " ".join(form.non_field_errors())
    )
    return _render_review(request, order, status=400, top_error=top_error, approve_form=form)


# The former "Approve with changes" address: the same single approval.
review_approve_with_changes = review_approve


@never_cache
@require_POST
@pharmacist_required
def review_approve_preview(request, number: int):
    """htmx: the amount the approval would capture for the packs entered, and the button naming it."""
    order = get_object_or_404(Order, number=number)
    lines = list(order.lines.all())
    return render(
        request,
        "prescriptions/review/_approve_preview.html",
        {"order": order, **_capture_preview(order, lines, request.POST)},
    )


@never_cache
@require_POST
@pharmacist_required
def review_reject(request, number: int):
    return _act(
        request,
        number,
        RejectForm,
        "reject_form",
        lambda order, form: decisions.prescription_reject(
            order=order,
            by=request.user,
            reason=form.cleaned_data["reason"],
            submission_key=form.cleaned_data["submission_key"],
        ),
        success="Order {number} not approved; the card hold has been released.",
    )


@never_cache
@require_POST
@pharmacist_required
def review_request_information(request, number: int):
    return _act(
        request,
        number,
        RequestInformationForm,
        "info_form",
        lambda order, form: decisions.prescription_request_information(
            order=order,
            by=request.user,
            message=form.cleaned_data["message"],
            submission_key=form.cleaned_data["submission_key"],
        ),
        success="Question sent to the customer of order {number}; it stays in the queue.",
    )


@never_cache
@require_POST
@pharmacist_required
def review_mark_shipped(request, number: int):
    return _act(
        request,
        number,
        ShipForm,
        "ship_form",
        lambda order, form: fulfilment.order_mark_shipped(
            order=order,
            by=request.user,
            carrier=form.cleaned_data["carrier"],
            tracking_number=form.cleaned_data["tracking_number"],
        ),
        success="Order {number} marked shipped; the customer has been emailed.",
    )


@require_safe  # no-store is set on the response below
@second_factor_required  # a pharmacist (or anyone with staff rights) has given the second factor
def prescription_file(request, pk):
    """The uploaded prescription, for pharmacists and the customer who sent it; 404 for anyone else."""
    prescription = Prescription.objects.select_related("order").filter(pk=pk).first()
    if prescription is None or not prescription.file:
        raise Http404("No such file.")
    order = prescription.order
    user = request.user
    allowed = (
        queue.is_pharmacist(user)
        or (user.is_authenticated and order.user_id is not None and order.user_id == user.pk)
        or order_token_is_valid(order=order, token=request.GET.get("t", ""))
    )
    if not allowed:
        raise Http404("No such file.")
    try:
        handle = prescription.file.open("rb")
    except (FileNotFoundError, OSError):
        raise Http404("No such file.") from None
    extension = prescription.file.name.rsplit(".", 1)[-1]
    response = FileResponse(
        handle,
        content_type=prescription.content_type or "application/octet-stream",
        as_attachment=prescription.content_type not in INLINE_TYPES,
        filename=f"prescription-order-{order.number}.{extension}",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    if prescription.content_type.startswith("image/"):
        # Images need no script; a PDF is left out because browsers refuse their viewer in a sandbox.
        response["Content-Security-Policy"] = "sandbox"
    response["Referrer-Policy"] = "no-referrer"
    return response
