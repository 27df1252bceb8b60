"""Log plumbing: one request id per request, carried into every log line and into Celery tasks.

An operator who sees an error in a worker's log can search for its ``request_id`` and find the web
request that queued the task, on whichever web process served it. The id lives in a contextvar
(safe with threads and async), a logging filter copies it onto each record, and two Celery signals
carry it across the broker in the task's headers. These signal receivers are plumbing, not business
logic: they are connected when this module is imported, which Django's logging configuration does
in every process (web, worker, beat) because ``LOGGING`` names ``RequestIDFilter``.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import traceback
import uuid
from datetime import UTC, datetime

from celery import signals
from gunicorn import glogging

REQUEST_ID_HEADER = "X-Request-ID"
# Celery message header carrying the id (headers travel with the message, not in the task's args).
TASK_HEADER = "request_id"
# An incoming id is trusted only if it is short and made of harmless characters: it ends up in logs
# and response headers, so anything else (newlines, quotes, megabytes) is replaced by a fresh uuid.
SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


def new_request_id() -> str:
    return uuid.uuid4().hex


def clean_request_id(value: str | None) -> str:
    """The incoming id if it is safe to echo and log, else a new one."""
    if value and SAFE_REQUEST_ID.match(value):
        return value
    return new_request_id()


def set_request_id(value: str | None) -> contextvars.Token:
    return _request_id.set(value)


def reset_request_id(token: contextvars.Token) -> None:
    _request_id.reset(token)


def current_request_id() -> str | None:
    """The id of the request (or task) being handled, for error reports to quote."""
    return _request_id.get()


class RequestIDFilter(logging.Filter):
    """Puts the current request id (or "-") on every record, so formatters can always use it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = _request_id.get() or "-"
        return True


# Attributes every LogRecord has; anything else on a record came from ``extra=`` and is logged.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
) | {"message", "asctime", "request_id"}


class JSONFormatter(logging.Formatter):
    """One JSON object per line: what log shippers (Loki, CloudWatch, Datadog …) ingest unparsed."""

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or _request_id.get() or "-",
            "process": record.process,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exc_info"] = "".join(traceback.format_exception(*record.exc_info))
        if record.stack_info:
            payload["stack_info"] = record.stack_info
        return json.dumps(payload, default=str, ensure_ascii=False)


# --- Celery: carry the id from the publishing request into the task ---------------------------

_task_tokens: dict[str, contextvars.Token] = {}


@signals.before_task_publish.connect(weak=False, dispatch_uid="pharmacy.request_id.publish")
def _add_request_id_to_task_headers(sender=None, headers=None, **kwargs) -> None:
    request_id = _request_id.get()
    if request_id and headers is not None and TASK_HEADER not in headers:
        headers[TASK_HEADER] = request_id


@signals.task_prerun.connect(weak=False, dispatch_uid="pharmacy.request_id.prerun")
def _restore_request_id_in_task(sender=None, task_id=None, task=None, **kwargs) -> None:
    request = getattr(task, "request", None)
    request_id = getattr(request, TASK_HEADER, None)
    if request_id is None and request is not None:
        request_id = (getattr(request, "headers", None) or {}).get(TASK_HEADER)
    if request_id is None:
        # An eager task runs inside the request that queued it: keep that request's id.
        request_id = _request_id.get() or f"task-{task_id}"
    _task_tokens[task_id] = _request_id.set(clean_request_id(request_id))


@signals.task_postrun.connect(weak=False, dispatch_uid="pharmacy.request_id.postrun")
def _clear_request_id_after_task(sender=None, task_id=None, **kwargs) -> None:
    token = _task_tokens.pop(task_id, None)
    if token is not None:
        try:
            _request_id.reset(token)
        except ValueError:  # set in another context (should not happen); just clear it
            _request_id.set(None)


# --- gunicorn's access log: no secrets from URLs -----------------------------------------------

#: Query parameters that carry a secret: ``t`` is the signed order link's token (orders/links.py).
SECRET_QUERY_PARAMETERS = frozenset({"t", "token", "key", "code"})
#: Path segments that are secrets: allauth's password-reset and email-confirmation keys, and the
#: order-claim confirmation token (accounts/urls.py).
SECRET_PATH_SEGMENT = re.compile(
    r"(/password/reset/key/|/confirm-email/|/claim/\d+/confirm/)[^/?#\s\"]+"
)
REDACTED = "[redacted]"


def redact_query(query: str) -> str:
    """``query`` with the value of every secret parameter replaced, whatever its spelling (``%74=``)."""
    from urllib.parse import unquote_plus

    def one(part: str) -> str:
        name, equals, _ = part.partition("=")
        return (
            f"{name}={REDACTED}"
            if equals and unquote_plus(name) in SECRET_QUERY_PARAMETERS
            else part
        )

    return "&".join(one(part) for part in query.split("&"))


def redact_url(url: str) -> str:
    """A path or URL (with its query) fit for a log line: secret path segments and parameters hidden."""
    path, question, query = url.partition("?")
    path = SECRET_PATH_SEGMENT.sub(lambda m: m.group(1) + REDACTED, path)
    return path + question + redact_query(query) if question else path


class RedactingGunicornLogger(glogging.Logger):
    """gunicorn's logger, except that the access log never holds a signed link's token.

    Whoever can read the log (the host's operators, a log shipper, a backup of it) could otherwise
    open a patient's order page, with its prescription status, from a guest's link. The request
    line, path, query and referrer are all redacted; the rest of the access log is unchanged.
    """

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        method, _, rest = atoms["r"].partition(" ")
        uri, space, protocol = rest.rpartition(" ")
        atoms["r"] = (
            f"{method} {redact_url(uri)} {protocol}" if space else f"{method} {redact_url(rest)}"
        )
        atoms["U"] = redact_url(atoms["U"] or "")
        atoms["q"] = redact_query(atoms["q"] or "")
        for referrer in ("f", "{referer}i"):
            if atoms.get(referrer) and atoms[referrer] != "-":
                atoms[referrer] = redact_url(atoms[referrer])
        return atoms
