"""One rule for staff actions that move money or make a clinical decision.

The service that does the work checks the permission, not only the page that shows the button:
an admin bulk action, a form posted by hand or a script all pass through the same check.
"""
from __future__ import annotations

from django.core.exceptions import PermissionDenied


def require_permission(user, permission: str, *, action: str, system_allowed: bool = True) -> None:
    """Raise ``PermissionDenied`` unless ``user`` holds ``permission`` (superusers hold all).

    ``user=None`` is the shop itself (a periodic job, a Stripe webhook): allowed unless the
    action is one only a person may take (``system_allowed=False``, e.g. a pharmacist's decision).
    Views turn ``PermissionDenied`` into a 403 page; nothing has been changed when it is raised.
    """
    if user is None:
        if system_allowed:
            return
        raise PermissionDenied(f"Only a member of staff can {action}.")
    if not (getattr(user, "is_active", False) and user.has_perm(permission)):
        raise PermissionDenied(f"You do not have permission to {action}.")
