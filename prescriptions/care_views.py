"""What a pharmacist's button on a transfer or renewal page does over HTTP (both pages alike).

The step itself (permission, lock, status table, audit row) is ``care_steps.step``, called by the
service the view hands in; this only turns its outcome into a page: the review page again with the
form's errors (400) or the refusal (its status), or a message and a redirect to the review page.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.db import models
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect

from .care_steps import CareError


def care_step_answer(
    request,
    *,
    model: type[models.Model],
    pk: int,
    form,
    form_name: str,
    action: Callable,
    success: str,
    review: Callable[..., HttpResponse],
    review_url: str,
) -> HttpResponse:
    """Run ``action(request_row, form)`` for a valid ``form`` and answer; ``review(request, pk,
    status=…, error=…, **{form_name: form})`` renders the page again with the form as typed."""
    row = get_object_or_404(model, pk=pk)
    if not form.is_valid():
        return review(request, pk, status=400, **{form_name: form})
    try:
        action(row, form)
    except CareError as exc:
        return review(request, pk, status=exc.status, error=exc.message, **{form_name: form})
    messages.success(request, success.format(pk=pk))
    return redirect(review_url, pk=pk)
