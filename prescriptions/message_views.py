"""The message pages: the patient's thread (``/accounts/messages/``) and the pharmacists' inbox
and threads (``/staff/messages/``). Thin: who may post what is decided in ``prescriptions.messages``.

Every page shows health data, so every answer is ``no-store`` (``never_cache``). A patient only
ever sees their own thread (there is no thread id in their URLs; an order that is not theirs is a
404). Staff pages: the second factor, then a customer gets 404 (nothing to learn), a member of
staff without ``prescriptions.answer_patient_messages`` gets 403.
"""

from __future__ import annotations

from functools import wraps

from django.contrib import messages as flash
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_safe

from pharmacy.permissions import can_act_as_staff
from pharmacy.second_factor import second_factor_required

from . import messages as rx_messages
from .message_forms import MessageForm
from .message_models import MessageSender, MessageThread

#: How many of the patient's orders the "About" list offers (the newest; an order page's link
#: adds its own order whatever its age).
ABOUT_ORDERS = 30


def _linkable(patient, request):
    """(orders, prescriptions, initial ``about``) for the form. ``?order=`` or ``?prescription=``
    (from an order page, a prescription on file) preselects it; one not the patient's is a 404."""
    orders = list(rx_messages.patient_orders(patient)[:ABOUT_ORDERS])
    prescriptions = list(rx_messages.patient_prescriptions(patient))
    about = ""
    number = request.GET.get("order")
    if number is not None:
        order = (
            rx_messages.patient_orders(patient).filter(number=int(number)).first()
            if number.isdigit()
            else None
        )
        if order is None:
            raise Http404("No such order.")
        if order not in orders:
            orders.append(order)
        about = f"order:{order.number}"
    record_id = request.GET.get("prescription")
    if record_id is not None:
        if not record_id.isdigit() or int(record_id) not in {r.pk for r in prescriptions}:
            raise Http404("No such prescription.")
        about = f"rx:{record_id}"
    return orders, prescriptions, about


def _decorate(items, thread: MessageThread | None, *, for_patient: bool) -> None:
    """Each message's author as this reader sees it, and whether the other side has read it."""
    for message in items:
        message.label = rx_messages.author_label(message, for_patient=for_patient)
        mine = (message.sender == MessageSender.PATIENT) == for_patient
        other_mark = (
            (thread.pharmacy_read_upto if for_patient else thread.patient_read_upto)
            if mine
            else (thread.patient_read_upto if for_patient else thread.pharmacy_read_upto)
        )
        message.mine = mine
        message.seen = message.pk <= other_mark  # by the other side if mine, by me if not


# --- The patient's thread -----------------------------------------------------------------


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def thread(request):
    patient = request.user
    orders, prescriptions, about = _linkable(patient, request)
    form = MessageForm(
        request.POST or None,
        orders=orders,
        prescriptions=prescriptions,
        initial={"about": about},
    )
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                rx_messages.message_post_by_patient(
                    patient=patient,
                    body=form.cleaned_data["body"],
                    submission_key=form.cleaned_data["submission_key"],
                    **form.linked(),
                )
            except rx_messages.MessageError as exc:
                form.add_error(None, str(exc))
            else:
                flash.success(
                    request, "Sent. A pharmacist will answer here; we email you when they do."
                )
                return redirect(reverse("messaging:thread") + "#latest")
    return _patient_page(request, form=form, status=status)


def _patient_page(request, *, form, status: int):
    thread = rx_messages.thread_of(request.user)
    items = rx_messages.thread_messages(thread)
    if items:
        _decorate(items, thread, for_patient=True)
        if status == 200:
            rx_messages.thread_read_by_patient(thread=thread, upto=items[-1].pk)
    return render(
        request,
        "prescriptions/messages/thread.html",
        {
            "form": form,
            "items": items,
            "thread": thread,
            "max_length": rx_messages.MAX_LENGTH,
        },
        status=status,
    )


# --- The pharmacists' inbox and threads ---------------------------------------------------


def staff_messages_required(view):
    """Signed in, past the second factor, a member of staff (else 404) allowed to answer (else 403)."""

    @wraps(view)
    @second_factor_required
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not can_act_as_staff(request.user):
            raise Http404("No such page.")
        rx_messages.require_answer_permission(request.user)
        return view(request, *args, **kwargs)

    return wrapper


@never_cache
@require_safe
@staff_messages_required
def inbox(request):
    rows = rx_messages.inbox(by=request.user)
    return render(
        request,
        "prescriptions/messages/inbox.html",
        {"rows": rows, "waiting": sum(1 for row in rows if row.waiting)},
    )


@never_cache
@require_http_methods(["GET", "POST"])
@staff_messages_required
def staff_thread(request, patient_id: int):
    patient = get_object_or_404(get_user_model(), pk=patient_id)
    orders, prescriptions, about = _linkable(patient, request)
    form = MessageForm(
        request.POST or None,
        orders=orders,
        prescriptions=prescriptions,
        initial={"about": about},
        body_label="Your answer",
    )
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                rx_messages.message_post_by_pharmacist(
                    patient=patient,
                    by=request.user,
                    body=form.cleaned_data["body"],
                    submission_key=form.cleaned_data["submission_key"],
                    **form.linked(),
                )
            except rx_messages.MessageError as exc:
                form.add_error(None, str(exc))
            else:
                flash.success(request, "Sent. The patient is emailed that a message is waiting.")
                return redirect(reverse("messaging:staff_thread", args=[patient.pk]) + "#latest")
    thread = rx_messages.thread_of(patient)
    items = rx_messages.thread_messages(thread)
    if items:
        _decorate(items, thread, for_patient=False)
        if status == 200:
            rx_messages.thread_read_by_pharmacy(thread=thread, upto=items[-1].pk, by=request.user)
    return render(
        request,
        "prescriptions/messages/staff_thread.html",
        {
            "form": form,
            "items": items,
            "thread": thread,
            "patient": patient,
            "orders": orders[:10],
            "waiting": rx_messages.waiting_text(
                thread.awaiting_reply_since if thread else None, timezone.now()
            ),
        },
        status=status,
    )
