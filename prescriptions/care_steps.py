"""One way to move a transfer or a renewal request a step: checked, locked, audited.

The permission is checked first (where the action happens, whatever page or script calls),
then the request row is locked and its status read again, so two pharmacists clicking at once
make one step and the other is told what happened. The step, its side effect (a prescription
recorded on file) and its event row commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import models, transaction

from pharmacy.permissions import require_permission

from .care_states import may_step


class CareError(Exception):
    """A request that cannot be made or moved; ``message`` is fit to show, ``status`` the HTTP
    code, ``field`` the form field it is about (None: the whole form)."""

    def __init__(self, message: str, *, status: int = 400, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.field = field


def step(
    *,
    model: type[models.Model],
    pk: int,
    to: str,
    by,
    note: str,
    steps: dict[str, frozenset[str]],
    needs_reason: frozenset[str],
    permission: str,
    action: str,
    effect: Callable[[models.Model], None] | None = None,
):
    """Move request ``pk`` of ``model`` to status ``to``; returns the saved request."""
    require_permission(by, permission, action=action, system_allowed=False)
    note = (note or "").strip()
    if to in needs_reason and not note:
        raise CareError("Please give the reason; the patient reads it.")
    with transaction.atomic():
        request = model.objects.select_for_update().filter(pk=pk).first()
        if request is None:
            raise CareError("No such request.", status=404)
        if not may_step(steps, request.status, to):
            raise CareError(
                f"This request is already “{request.get_status_display()}”; it cannot be "
                f"moved to “{labels(model).get(to, to)}”. "
                "Nothing was changed.",
                status=409,
            )
        before = request.status
        request.status = to
        if to in needs_reason:
            request.reason = note
        if effect is not None:
            effect(request)
        request.save()
        request.events.create(from_status=before, to_status=to, by=by, note=note)
    return request


def labels(model: type[models.Model]) -> dict[str, str]:
    return dict(model._meta.get_field("status").flatchoices)
