"""Error reports to Sentry (sentry-sdk) when ``SENTRY_DSN`` is set, with no health data in them.

A pharmacy's errors happen while handling prescriptions, patients and payments, and a report goes
to a third party. So a report keeps only what locates the bug: the exception's type, the stack
(files, functions, lines of code), the view, the request's method and path, a few harmless headers
and the request id (``X-Request-Id``, the key to this server's own logs, which stay here). Gone
are the request body, cookies, query string, every other header, the client's address, local
variables, the exception's message (``IntegrityError`` and our own errors quote row values),
log messages' arguments, breadcrumbs (SQL, log lines, outgoing URLs) and any extra data.

The SDK is told not to collect these in the first place (no personal data, which is its default:
``send_default_pii`` is left unset because sentry-sdk 2.x deprecates it, and unset means off; no
local variables, no request bodies, no breadcrumbs); ``scrub_event`` removes them again as a second
line, keeping an allow-list rather than a deny-list so a new field is dropped by default.
"""

from __future__ import annotations

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration

#: Request headers a report may carry (lower case): nothing that identifies a person or a session.
SAFE_HEADERS = frozenset(
    {"host", "user-agent", "accept", "content-type", "content-length", "x-request-id"}
)
REMOVED = "[removed]"


def _frames(container: dict) -> None:
    for frame in (container.get("stacktrace") or {}).get("frames") or []:
        frame.pop("vars", None)


def _scrub_request(request: dict) -> dict:
    headers = {
        name: value
        for name, value in (request.get("headers") or {}).items()
        if name.lower() in SAFE_HEADERS
    }
    return {
        "method": request.get("method"),
        "url": (request.get("url") or "").split("?", 1)[0],
        "headers": headers,
    }


def scrub_event(event: dict, hint: dict | None = None) -> dict:
    """``before_send``: the event with only the fields that locate a bug (see the module's docstring)."""
    if "request" in event:
        event["request"] = _scrub_request(event["request"])
    for exception in (event.get("exception") or {}).get("values") or []:
        if exception.get("value"):
            exception["value"] = REMOVED
        _frames(exception)
    for thread in (event.get("threads") or {}).get("values") or []:
        _frames(thread)
    logentry = event.get("logentry")
    if logentry:
        event["logentry"] = {"message": logentry.get("message", ""), "params": []}
    if "message" in event and "logentry" in event:
        event["message"] = event["logentry"]["message"]
    for key in ("breadcrumbs", "extra", "user"):
        event.pop(key, None)
    for name in list(event.get("contexts") or {}):
        if name not in {"runtime", "os", "trace", "device", "app"}:
            event["contexts"].pop(name)
    return event


def sentry_init(
    *, dsn: str, environment: str, traces_sample_rate: float = 0.0, transport=None
) -> None:
    """Start reporting (called from the settings when ``SENTRY_DSN`` is set).

    ``transport`` is the SDK's own seam for where events go (tests keep them in memory).
    """
    from pharmacy.logging import current_request_id

    def before_send(event, hint):
        request_id = current_request_id()
        if request_id:
            event.setdefault("tags", {})["request_id"] = request_id
        return scrub_event(event, hint)

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        include_local_variables=False,
        max_request_body_size="never",
        max_breadcrumbs=0,
        before_send=before_send,
        before_send_transaction=scrub_event,
        traces_sample_rate=traces_sample_rate,
        transport=transport,
    )
