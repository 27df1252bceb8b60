"""Request id middleware (every response says which id its log lines carry), NUL-byte guard,
and django-csp's middleware with its policy text built once per process."""
from __future__ import annotations

import http.client as http_client
from dataclasses import asdict

import csp.middleware
from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.utils import build_policy
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpResponseBadRequest

from pharmacy.logging import REQUEST_ID_HEADER, clean_request_id, reset_request_id, set_request_id

_META_KEY = "HTTP_" + REQUEST_ID_HEADER.upper().replace("-", "_")


class RequestIDMiddleware:
    """Accept a safe ``X-Request-ID`` from the proxy (so its logs and ours match) or make one.

    Placed first in ``MIDDLEWARE`` so that log lines from every later middleware carry the id.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = clean_request_id(request.META.get(_META_KEY))
        request.request_id = request_id
        token = set_request_id(request_id)
        try:
            response = self.get_response(request)
        finally:
            reset_request_id(token)
        response[REQUEST_ID_HEADER] = request_id
        return response


class RejectNulBytesMiddleware:
    """Answer 400 to a URL part, query parameter or form field containing a NUL character.

    PostgreSQL cannot store or compare text with NUL in it, so such a value reaching a query is
    a 500; no honest browser sends one. Checked once here rather than in every form and view.
    Form bodies are checked for every view that reads them anyway (CSRF-protected ones); a
    csrf-exempt view such as the Stripe webhook reads its raw body itself and is left alone.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        name = self._offending_name(request, view_func, view_args, view_kwargs)
        if name is None:
            return None
        return HttpResponseBadRequest(
            f"The {name} contains a NUL character, which is never valid here.",
            content_type="text/plain; charset=utf-8",
        )

    @staticmethod
    def _offending_name(request, view_func, view_args, view_kwargs) -> str | None:
        if any(isinstance(value, str) and "\x00" in value for value in (*view_args, *view_kwargs.values())):
            return "address"
        sources = [request.GET]
        if request.method == "POST" and not getattr(view_func, "csrf_exempt", False):
            sources.append(request.POST)
        for data in sources:
            for key, values in data.lists():
                if "\x00" in key:
                    return "parameter name " + repr(key.replace("\x00", "\\0")[:100])
                if any("\x00" in value for value in values if isinstance(value, str)):
                    return "parameter " + repr(key[:100])
        return None


class CSPMiddleware(csp.middleware.CSPMiddleware):
    """django-csp's middleware, with the policy text built once per process instead of twice per
    response (issue #17: the build, with ``dataclasses.asdict``'s deep copies, cost about as much
    as the rest of a trivial view's middleware).

    Only the building is changed: a response with no per-view policy (no ``@csp_update``,
    ``@csp_replace`` or ``@csp_override``) gets the settings' policy, built once with a stand-in
    nonce that each response's own nonce then replaces (and once without a nonce, for responses
    that used none). Which header is set, when, and every exemption stay django-csp's
    (``process_response`` below is its code with that one call changed); a change of the CSP
    settings (``override_settings`` in tests) starts afresh.
    """

    # Never in a policy: base64 nonces have no "~", directives no "!".
    _NONCE_STAND_IN = "~nonce-stand-in!"
    _built: dict[tuple[bool, bool], str] = {}

    def _policy(self, parts: csp.middleware.PolicyParts, *, report_only: bool) -> str:
        if parts.config is not None or parts.update is not None or parts.replace is not None:
            return build_policy(**asdict(parts), report_only=report_only)
        key = (report_only, parts.nonce is None)
        text = self._built.get(key)
        if text is None:
            nonce = None if parts.nonce is None else self._NONCE_STAND_IN
            text = self._built[key] = build_policy(nonce=nonce, report_only=report_only)
        return text if parts.nonce is None else text.replace(self._NONCE_STAND_IN, parts.nonce)

    def process_response(self, request, response):
        # django-csp 4.0's CSPMiddleware.process_response, building through ``_policy``.
        exempted_debug_codes = (http_client.INTERNAL_SERVER_ERROR, http_client.NOT_FOUND)
        if response.status_code in exempted_debug_codes and settings.DEBUG:
            return response

        for report_only, header, exempt, setting in (
            (False, HEADER, "_csp_exempt", "CONTENT_SECURITY_POLICY"),
            (True, HEADER_REPORT_ONLY, "_csp_exempt_ro", "CONTENT_SECURITY_POLICY_REPORT_ONLY"),
        ):
            parts = self.get_policy_parts(request=request, response=response, report_only=report_only)
            policy = self._policy(parts, report_only=report_only)
            if not policy or getattr(response, exempt, False) is not False or header in response:
                continue
            prefixes = (getattr(settings, setting, None) or {}).get("EXCLUDE_URL_PREFIXES", None) or ()
            if not request.path_info.startswith(tuple(prefixes)):
                response[header] = policy

        # As django-csp: a nonce asked for after the header is written is an error, not a
        # nonce missing from the policy.
        if getattr(request, "_csp_nonce", None) is None:
            setattr(request, "csp_nonce", csp.middleware.CheckableLazyObject(self._csp_nonce_post_response))
        return response


@receiver(setting_changed)
def _csp_settings_changed(*, setting, **kwargs) -> None:
    if setting in ("CONTENT_SECURITY_POLICY", "CONTENT_SECURITY_POLICY_REPORT_ONLY"):
        CSPMiddleware._built.clear()
