"""Staff pages only after a second factor in this session; one place, so no staff view can forget.

Every ``is_staff`` account reaching ``STAFF_SECOND_FACTOR_PATHS`` (the admin: refunds, price
changes; ``/staff/``: prescription review; prescription files) must have used its second factor
(TOTP, a recovery code, a security key) in this session, as allauth records it after the check. A staff member
without one is sent to set it up; one who has it but signed in another way (an old session, a
session from before it was set up) is asked for a code. Customers are not affected.

Every page under /accounts/ (the shop's and allauth's) is also marked ``no-store``.
"""
from __future__ import annotations

from allauth.account.authentication import get_authentication_records
from allauth.mfa.models import Authenticator
from allauth.mfa.utils import is_mfa_enabled
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.http import urlencode


def session_passed_second_factor(request: HttpRequest) -> bool:
    """True if the signed-in user used a second factor (TOTP, recovery code...) in this session."""
    return any(record.get("method") == "mfa" for record in get_authentication_records(request, request.user))


def _needs_second_factor(request: HttpRequest) -> bool:
    # The path first: ``request.user`` is lazy and costs a query, which pages outside the staff
    # paths (the shop, for customers) may not need at all.
    if not request.path.startswith(tuple(settings.STAFF_SECOND_FACTOR_PATHS)):
        return False
    user = getattr(request, "user", None)
    return user is not None and user.is_authenticated and user.is_staff


class StaffSecondFactorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        if _needs_second_factor(request) and not session_passed_second_factor(request):
            back = urlencode({"next": request.get_full_path()})
            if not is_mfa_enabled(request.user):
                messages.warning(
                    request,
                    "Staff pages need a second factor. Set up an authenticator app to continue.",
                )
                return redirect(f"{reverse('mfa_activate_totp')}?{back}")
            messages.info(request, "Staff pages need your second factor in this session.")
            has_totp = is_mfa_enabled(request.user, [Authenticator.Type.TOTP])
            return redirect(f"{reverse('mfa_reauthenticate' if has_totp else 'mfa_reauthenticate_webauthn')}?{back}")
        response = self.get_response(request)
        if request.path.startswith("/accounts/"):
            # allauth's pages too (email addresses, recovery codes): never kept by a cache.
            add_never_cache_headers(response)
        return response
