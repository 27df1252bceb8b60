"""Request id middleware (every response says which id its log lines carry) and NUL-byte guard."""

from __future__ import annotations

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
        if any(
            isinstance(value, str) and "\x00" in value
            for value in (*view_args, *view_kwargs.values())
        ):
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
