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


def can_act_as_staff(user) -> bool:
    """Whether ``user`` holds any staff power at all: the one rule the second factor follows.

    True for staff status, a superuser, a member of any group (pharmacist, pricing...) or a user
    holding any permission of their own. Customers have none of these, so every right a person
    can be given to act for the shop is covered, including a group or permission added later,
    without naming it here. (Customer groupings must therefore never be ``auth`` groups.)
    Inactive users count too: the answer is about rights, not about whether they may sign in.
    The database answer is kept on the user object for the rest of the request.
    """
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if user.is_staff or user.is_superuser:
        return True
    cached = getattr(user, "_can_act_as_staff", None)
    if cached is None:
        cached = user.groups.exists() or user.user_permissions.exists()
        user._can_act_as_staff = cached
    return cached
