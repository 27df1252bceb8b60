"""Request id middleware: every response says which id its log lines carry."""
from __future__ import annotations

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
