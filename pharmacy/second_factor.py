"""The second factor follows the person: anyone who can act as staff has used it in this session.

Who counts is ``pharmacy.permissions.can_act_as_staff`` (staff status, superuser, any group, any
permission). "Used it" is what allauth records after a correct TOTP code, a recovery code or a
security key (its authentication records in the session); setting up the authenticator counts
too (``accounts.views.ActivateTOTPView`` records it the same way).

The check runs where access is decided, so no URL spelling, script prefix or HTTP method can
walk around it: the admin site (``pharmacy.admin_site``), the staff views' decorators
(``second_factor_required``, used by ``prescriptions.review_views.pharmacist_required``) and the
prescription file view. ``accounts.middleware`` repeats it for the staff URL prefixes as a second
line. Apps import this module, never ``accounts`` (which sits above them).
"""

from __future__ import annotations

from functools import wraps

from allauth.account.authentication import get_authentication_records
from allauth.mfa.adapter import get_adapter as get_mfa_adapter
from allauth.mfa.models import Authenticator
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.http import urlencode

from pharmacy.permissions import can_act_as_staff


def second_factor_passed(request: HttpRequest) -> bool:
    """True if the signed-in user used a second factor (TOTP, recovery code...) in this session."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return False
    return any(
        record.get("method") == "mfa" for record in get_authentication_records(request, user)
    )


def second_factor_missing(request: HttpRequest) -> bool:
    """True if the signed-in user can act as staff but has not used the second factor yet."""
    return can_act_as_staff(getattr(request, "user", None)) and not second_factor_passed(request)


def second_factor_redirect(request: HttpRequest) -> HttpResponse:
    """Where to go instead: set up an authenticator, or give a code; then back to this page."""
    back = urlencode({"next": request.get_full_path()})
    if not get_mfa_adapter().is_mfa_enabled(request.user):
        messages.warning(
            request, "Staff pages need a second factor. Set up an authenticator app to continue."
        )
        response = redirect(f"{reverse('mfa_activate_totp')}?{back}")
    else:
        messages.info(request, "Staff pages need your second factor each time you sign in.")
        has_totp = get_mfa_adapter().is_mfa_enabled(request.user, [Authenticator.Type.TOTP])
        response = redirect(
            f"{reverse('mfa_reauthenticate' if has_totp else 'mfa_reauthenticate_webauthn')}?{back}"
        )
    add_never_cache_headers(response)
    return response


def second_factor_required(view):
    """Decorator for a view anyone with staff rights may open: they must have passed the second
    factor first. Customers and visitors go on to the view (which decides what they may see)."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if second_factor_missing(request):
            return second_factor_redirect(request)
        return view(request, *args, **kwargs)

    return wrapper
