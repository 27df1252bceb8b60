"""Pages for renewal requests: the patient's one click and status, the pharmacists' renewal
queue and the prescriber page (printable, fax-ready).

Thin: the rules are in ``prescriptions.renewals``. A patient sees only their own requests (404
for anyone else's); the queue and the prescriber page are for pharmacists past the second
factor, and each action checks its permission again in the service. Never cached.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from . import renewals
from .care_forms import NoteForm, ReasonForm, RenewForm
from .care_steps import CareError
from .care_views import care_step_answer
from .models import PrescriptionOnFile, RenewalRequest
from .review_views import pharmacist_required


@never_cache
@require_POST
@login_required
def renewal_start(request, pk: int):
    """One click on an expired or used-up prescription: ask us to ask the prescriber."""
    record = get_object_or_404(PrescriptionOnFile, pk=pk, user=request.user)
    try:
        renewal = renewals.renewal_request_start(prescription=record, by=request.user)
    except CareError as exc:
        return render(
            request,
            "prescriptions/renewals/refused.html",
            {"record": record, "message": exc.message},
            status=exc.status,
        )
    messages.success(
        request,
        "We will ask your prescriber to renew this prescription; you can follow the request here.",
    )
    return redirect("renewals:detail", pk=renewal.pk)


@never_cache
@require_safe
@login_required
def renewal_detail(request, pk: int):
    renewal = get_object_or_404(
        RenewalRequest.objects.select_related("prescription", "renewed_prescription"),
        pk=pk,
        prescription__user=request.user,
    )
    return render(
        request,
        "prescriptions/renewals/detail.html",
        {"renewal": renewal, "events": list(renewal.events.all())},
    )


# --- The pharmacist ----------------------------------------------------------------------------


@never_cache
@require_safe
@pharmacist_required
def renewal_queue(request):
    open_, closed = renewals.renewal_queue()
    return render(request, "prescriptions/renewals/queue.html", {"open": open_, "closed": closed})


def _renewal(pk: int) -> RenewalRequest:
    return get_object_or_404(
        RenewalRequest.objects.select_related(
            "prescription__dosage__product", "prescription__user", "renewed_prescription"
        ),
        pk=pk,
    )


def _review(request, pk: int, *, status: int = 200, error: str = "", **forms):
    renewal = _renewal(pk)
    old = renewal.prescription
    renew = forms.get("renew_form") or RenewForm(
        initial={
            "directions": old.directions,
            "daily_dose": old.daily_dose,
            "quantity_per_fill": old.quantity_per_fill,
            "refills_written": old.refills_authorised,
            "date_written": timezone.localdate(),
            "prescriber_name": old.prescriber_name,
            "prescriber_phone": old.prescriber_phone,
            "prescriber_licence": old.prescriber_licence,
        }
    )
    context = {
        "renewal": renewal,
        "record": old,
        "checks": renewals.refill_checks(old),
        "events": list(renewal.events.select_related("by")),
        "error": error,
        "sent_form": forms.get("sent_form") or NoteForm(),
        "renew_form": renew,
        "deny_form": forms.get("deny_form") or ReasonForm(),
    }
    for name in ("sent_form", "renew_form", "deny_form"):
        context[name].auto_id = f"{name.removesuffix('_form')}-%s"
    return render(request, "prescriptions/renewals/review.html", context, status=status)


@never_cache
@require_safe
@pharmacist_required
def renewal_review(request, pk: int):
    return _review(request, pk)


@never_cache
@require_safe
@pharmacist_required
def renewal_prescriber_page(request, pk: int):
    """What the prescriber receives: print it or fax it; it says everything needed to renew."""
    renewal = _renewal(pk)
    return render(
        request,
        "prescriptions/renewals/prescriber.html",
        {
            "renewal": renewal,
            "record": renewal.prescription,
            "last_fill": renewals.last_fill(renewal.prescription),
        },
    )


def _act(request, pk: int, form, form_name: str, action, success: str):
    return care_step_answer(
        request,
        model=RenewalRequest,
        pk=pk,
        form=form,
        form_name=form_name,
        action=action,
        success=success,
        review=_review,
        review_url="renewals:review",
    )


@never_cache
@require_POST
@pharmacist_required
def renewal_sent(request, pk: int):
    return _act(
        request,
        pk,
        NoteForm(request.POST),
        "sent_form",
        lambda renewal, form: renewals.renewal_mark_sent(
            renewal=renewal, by=request.user, note=form.cleaned_data["note"]
        ),
        "Renewal {pk}: marked sent to the prescriber.",
    )


@never_cache
@require_POST
@pharmacist_required
def renewal_renew(request, pk: int):
    return _act(
        request,
        pk,
        RenewForm(request.POST),
        "renew_form",
        lambda renewal, form: renewals.renewal_renew(
            renewal=renewal, by=request.user, data=form.as_input()
        ),
        "Renewal {pk}: renewed; the new prescription is on file and the patient can order it.",
    )


@never_cache
@require_POST
@pharmacist_required
def renewal_deny(request, pk: int):
    return _act(
        request,
        pk,
        ReasonForm(request.POST),
        "deny_form",
        lambda renewal, form: renewals.renewal_deny(
            renewal=renewal, by=request.user, reason=form.cleaned_data["reason"]
        ),
        "Renewal {pk}: denied; the patient sees your reason.",
    )
