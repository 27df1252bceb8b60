"""Where to send a visitor back to, from a ``next`` field or the ``Referer``: only this site.

One helper for every view that redirects to a place the client named. A bare word (``next=id``)
is not a URL on this site (Django's ``redirect()`` would try it as a view name and fail with a
500), ``//evil.com``, ``https://evil.com`` or ``javascript:`` are not ours, and a path no view
answers is no place to send anyone: all fall back to the default. Answer with
``HttpResponseRedirect`` on the result, never ``redirect()``.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from django.http import HttpRequest
from django.urls import Resolver404, get_script_prefix, resolve
from django.utils.http import url_has_allowed_host_and_scheme

MAX_LENGTH = 2048


def is_safe_next(request: HttpRequest, url: object) -> bool:
    """True for a path on this site ("/cart/") or an absolute URL to this host."""
    if not isinstance(url, str) or not url or len(url) > MAX_LENGTH:
        return False
    if any(ord(char) < 32 for char in url):
        return False
    parts = urlsplit(url)
    if not (parts.scheme or parts.netloc) and not url.startswith("/"):
        return False  # a relative word like "id" or "../x": not a place we send people
    if not url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return False
    return _resolves(parts.path)


def _resolves(path: str) -> bool:
    """Whether a view of this site answers the path (under the script prefix it is served at)."""
    prefix = get_script_prefix()
    if not path.startswith(prefix):
        return False
    try:
        resolve("/" + unquote(path[len(prefix) :]))
    except Resolver404:
        return False
    return True


def safe_next(request: HttpRequest, *candidates: object, default: str) -> str:
    """The first candidate that is safe (see ``is_safe_next``), else ``default``."""
    for candidate in candidates:
        if is_safe_next(request, candidate):
            return candidate  # type: ignore[return-value]
    return default
