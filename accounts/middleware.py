"""Second line for the staff second factor, and ``no-store`` on every page under /accounts/.

The rule (``pharmacy.second_factor``) is enforced where access is decided: the admin site, the
staff views' decorators, the prescription file view. This middleware repeats it for every request
under ``STAFF_SECOND_FACTOR_PATHS`` (the admin, ``/staff/``, prescription files), so a staff view
added without its decorator is still covered. It reads ``path_info``, the path the URL resolver
matches: ``request.path`` also holds ``SCRIPT_NAME``, which a trusted proxy's header may set (a
session once reached the staff pages by adding one). The path is compared lower-cased with
repeated slashes folded, so no spelling of a staff prefix slips past; the method is not looked at.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.http import HttpRequest
from django.utils.cache import add_never_cache_headers

from pharmacy.second_factor import second_factor_missing, second_factor_redirect

_SLASHES = re.compile(r"/{2,}")


def _comparable(path_info: str) -> str:
    return _SLASHES.sub("/", path_info).lower()


def _staff_path(request: HttpRequest) -> bool:
    # The path first: ``request.user`` is lazy and costs a query, which pages outside the staff
    # paths (the shop, for customers) may not need at all.
    return _comparable(request.path_info).startswith(tuple(settings.STAFF_SECOND_FACTOR_PATHS))


class StaffSecondFactorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        if _staff_path(request) and second_factor_missing(request):
            return second_factor_redirect(request)
        response = self.get_response(request)
        if _comparable(request.path_info).startswith("/accounts/"):
            # allauth's pages too (email addresses, recovery codes): never kept by a cache.
            add_never_cache_headers(response)
        return response
