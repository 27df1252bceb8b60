"""The admin site, opened only to staff who passed the second factor in this session.

Django's site lets in any active ``is_staff`` user; this one also asks
``pharmacy.second_factor``. Every admin page is built with ``admin_view`` (the site's own pages
and every ``ModelAdmin`` URL, including the shop's refund and import pages), so the check holds
whatever the request's path, script prefix or method. ``pharmacy.admin_apps.PharmacyAdminConfig``
makes this the default site, the one ``admin.site`` and ``@admin.register`` use.
"""

from __future__ import annotations

from functools import wraps

from django.contrib import admin

from pharmacy.second_factor import (
    second_factor_missing,
    second_factor_passed,
    second_factor_redirect,
)


class PharmacyAdminSite(admin.AdminSite):
    site_header = "Pharmacy administration"
    site_title = "Pharmacy admin"

    def has_permission(self, request) -> bool:
        return super().has_permission(request) and second_factor_passed(request)

    def admin_view(self, view, cacheable=False):
        """Before Django's check (which would send a signed-in member of staff to the sign-in
        page), send one without the second factor to give it, then back here."""
        checked = super().admin_view(view, cacheable)

        @wraps(checked)
        def gated(request, *args, **kwargs):
            if second_factor_missing(request):
                return second_factor_redirect(request)
            return checked(request, *args, **kwargs)

        return gated
