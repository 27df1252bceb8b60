"""Pages for transfers in: the patient's request and status, the pharmacists' transfer queue.

Thin: the rules are in ``prescriptions.transfers``. A patient sees only their own requests (404
for anyone else's); the queue is for pharmacists past the second factor, and each action checks
its permission again in the service. Every page carries health data: never cached.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from . import transfers
from .care_forms import NoteForm, ReasonForm, ReceiveForm, TransferRequestForm
from .care_steps import CareError
from .care_views import care_step_answer
from .models import TransferRequest
from .review_views import pharmacist_required


def _prefill(user) -> dict:
    """The account's name and date of birth, when the patient gave them."""
    profile = getattr(user, "patient_profile", None)
    return {
        "patient_name": user.get_full_name(),
        "patient_date_of_birth": getattr(profile, "date_of_birth", None),
        "prescriber_name": getattr(profile, "prescriber_name", ""),
        "prescriber_phone": getattr(profile, "prescriber_phone", ""),
    }


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
@login_required
def transfer_new(request):
    if request.method != "POST":
        form = TransferRequestForm(initial=_prefill(request.user))
        return render(request, "prescriptions/transfers/new.html", {"form": form})
    form = TransferRequestForm(request.POST)
    if form.is_valid():
        try:
            transfer = transfers.transfer_request_create(user=request.user, data=form.as_input())
        except CareError as exc:
            form.add_error(exc.field, exc.message)
        else:
            messages.success(
                request,
                "We have your transfer request. Our pharmacist will call the other pharmacy; "
                "you can follow the request here.",
            )
            return redirect("transfers:detail", pk=transfer.pk)
    return render(request, "prescriptions/transfers/new.html", {"form": form}, status=400)


@never_cache
@require_safe
@login_required
def transfer_list(request):
    return render(
        request,
        "prescriptions/transfers/list.html",
        {"transfers": list(transfers.transfers_for_patient(request.user))},
    )


@never_cache
@require_safe
@login_required
def transfer_detail(request, pk: int):
    transfer = get_object_or_404(
        TransferRequest.objects.select_related("prescription"), pk=pk, user=request.user
    )
    return render(
        request,
        "prescriptions/transfers/detail.html",
        {"transfer": transfer, "events": list(transfer.events.all())},
    )


# --- The pharmacist ----------------------------------------------------------------------------


@never_cache
@require_safe
@pharmacist_required
def transfer_queue(request):
    open_, closed = transfers.transfer_queue()
    return render(request, "prescriptions/transfers/queue.html", {"open": open_, "closed": closed})


def _review(request, pk: int, *, status: int = 200, error: str = "", **forms):
    transfer = get_object_or_404(
        TransferRequest.objects.select_related("user", "dosage__product", "prescription"), pk=pk
    )
    receive = forms.get("receive_form") or ReceiveForm(
        initial={
            "prescriber_name": transfer.prescriber_name,
            "prescriber_phone": transfer.prescriber_phone,
        }
    )
    context = {
        "transfer": transfer,
        "events": list(transfer.events.select_related("by")),
        "error": error,
        "contact_form": forms.get("contact_form") or NoteForm(),
        "receive_form": receive,
        "refuse_form": forms.get("refuse_form") or ReasonForm(),
    }
    for name in ("contact_form", "receive_form", "refuse_form"):
        context[name].auto_id = f"{name.removesuffix('_form')}-%s"
    return render(request, "prescriptions/transfers/review.html", context, status=status)


@never_cache
@require_safe
@pharmacist_required
def transfer_review(request, pk: int):
    return _review(request, pk)


def _act(request, pk: int, form, form_name: str, action, success: str):
    return care_step_answer(
        request,
        model=TransferRequest,
        pk=pk,
        form=form,
        form_name=form_name,
        action=action,
        success=success,
        review=_review,
        review_url="transfers:review",
    )


@never_cache
@require_POST
@pharmacist_required
def transfer_contacted(request, pk: int):
    return _act(
        request,
        pk,
        NoteForm(request.POST),
        "contact_form",
        lambda transfer, form: transfers.transfer_mark_contacted(
            transfer=transfer, by=request.user, note=form.cleaned_data["note"]
        ),
        "Transfer {pk}: marked contacted.",
    )


@never_cache
@require_POST
@pharmacist_required
def transfer_receive(request, pk: int):
    return _act(
        request,
        pk,
        ReceiveForm(request.POST),
        "receive_form",
        lambda transfer, form: transfers.transfer_receive(
            transfer=transfer, by=request.user, data=form.as_input()
        ),
        "Transfer {pk}: received and kept on file; the patient can order it now.",
    )


@never_cache
@require_POST
@pharmacist_required
def transfer_refuse(request, pk: int):
    return _act(
        request,
        pk,
        ReasonForm(request.POST),
        "refuse_form",
        lambda transfer, form: transfers.transfer_refuse(
            transfer=transfer, by=request.user, reason=form.cleaned_data["reason"]
        ),
        "Transfer {pk}: refused; the patient sees your reason.",
    )
