"""A generic outbox: queue, send once, retry, resend, dedupe, and a guard on subject lines.

It knows nothing of orders or accounts. The app that owns an email's subject matter builds its
context (plain JSON data: amounts already formatted, links absolute, lines as dicts), chooses its
recipient, dedupe key and the words its subject must never contain, and calls ``email_queue``
inside its transaction (``orders.emails`` for order emails, ``accounts.adapter`` for account
emails). The row keeps that context, so a retry or a resend renders the very same email.

Attachments are kept by reference, never as files: ``{"renderer": name, "args": {...}}``, where
the name is a key of ``settings.EMAIL_ATTACHMENT_RENDERERS`` (the wiring, in ``pharmacy``) and the
args are plain data (an id). The renderer makes the file each time the email is rendered, from
the sender's own records, so a retry hours later attaches the same document, and the outbox row,
its admin page and its error text never hold what the file says (a receipt names medicines).

``email_queue`` writes the row and hands its id to Celery only once the caller's transaction
commits, so a rolled-back payment or review never emails anyone. ``email_send`` is what the
Celery task runs: it claims the row with a compare-and-set on ``status`` so that two deliveries
of the same task (a redelivered message, the stale-row sweeper, a resend) can never both send.
A failure that may pass leaves the row waiting to retry at ``next_attempt_at`` (a minute, doubling
to an hour, for a little over a day); ``email_requeue_stale`` (beat, every minute) hands it over
when that time comes, so an outage of hours delays email and loses none.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import smtplib
import uuid
from collections.abc import Iterable
from datetime import date, timedelta

from anymail.exceptions import AnymailAPIError
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.module_loading import import_string

from pharmacy.permissions import require_permission

from .models import (
    PRERENDERED_KINDS,
    DigestEntry,
    EmailKind,
    EmailStatus,
    OutboundEmail,
)

logger = logging.getLogger(__name__)

#: Failures that may be worth trying again later: the mail server or the email service was
#: unreachable or answered (``failure_is_temporary`` then tells "not now" from "never"). Anything
#: else (a template bug, an unsafe subject, a malformed address) fails the email at once.
RETRYABLE_ERRORS: tuple[type[BaseException], ...] = (
    smtplib.SMTPException,
    OSError,
    AnymailAPIError,
)

#: A row left in "sending" longer than the task's hard time limit belongs to a worker that died
#: mid-send; it may be claimed again (at-least-once delivery for that rare case).
SENDING_STALE_AFTER = timedelta(seconds=getattr(settings, "CELERY_TASK_TIME_LIMIT", 120) + 30)
# A queued row no worker has tried this long after it was written was never handed over (or lost).
NEVER_TRIED_AFTER = timedelta(minutes=1)


class UnsafeSubjectError(ValueError):
    """A rendered subject names a word its sender forbade (a medicine): it would leak health details."""


class AttachmentError(ValueError):
    """An attachment could not be made; the message names the renderer only, never the content."""


# --- Queuing ----------------------------------------------------------------------------------


def _plain(context: dict) -> dict:
    """The context as JSON, or TypeError: the sender formats its figures, the outbox stores text."""
    try:
        return json.loads(json.dumps(context))
    except TypeError as exc:
        raise TypeError(
            f"An email's context must be plain JSON data (format amounts first): {exc}"
        ) from exc


def _attachments(specs: Iterable[dict]) -> list[dict]:
    """The attachment references, checked: a known renderer and plain-data arguments."""
    checked = []
    for spec in specs:
        name = spec.get("renderer")
        if name not in settings.EMAIL_ATTACHMENT_RENDERERS:
            raise ValueError(f"Unknown attachment renderer {name!r} (EMAIL_ATTACHMENT_RENDERERS).")
        checked.append({"renderer": name, "args": _plain(dict(spec.get("args") or {}))})
    return checked


def _forbidden(words: Iterable[str]) -> list[str]:
    return sorted({word.strip().casefold() for word in words if word and len(word.strip()) >= 3})


def _hand_to_celery(email_id: int) -> bool:
    """Give the row's id to Celery; False (logged) if the broker cannot take it right now.

    Bounded (``CELERY_PUBLISH_TIMEOUT``, one try) so an unreachable or silent Redis costs the
    request well under a second; the row stays queued and ``email_requeue_stale`` (every minute)
    hands it over again. Never raises: the caller's work is already committed.
    """
    from pharmacy.celery import publish_bounded

    from .tasks import send_email_task

    try:
        publish_bounded(send_email_task, email_id)
    except Exception as exc:  # noqa: BLE001 - any broker failure means "later", never a 500
        logger.warning(
            "Email %s could not be handed to Celery (%s: %s); it stays queued for the sweep.",
            email_id,
            type(exc).__name__,
            exc,
        )
        return False
    return True


def _enqueue_on_commit(email_id: int) -> None:
    """Hand the row to Celery after commit; a broker outage must not break the committed request."""
    transaction.on_commit(lambda: _hand_to_celery(email_id))


def email_queue(
    *,
    kind: str,
    to: str,
    context: dict,
    dedupe_key: str,
    forbidden_words: Iterable[str] = (),
    related=None,
    subject: str = "",
    attachments: Iterable[dict] = (),
) -> OutboundEmail:
    """Record the email and send it after the caller's transaction commits; the one way in.

    ``context`` is what the templates ``emails/<kind>{_subject.txt,.txt,.html}`` render at send
    time, or, with ``subject`` given, ``{"text", "html"}`` already rendered by the sender.
    ``forbidden_words`` must never appear in the subject (checked when it is rendered).
    ``related`` is the order the email is about, for the admin's link (None for most account
    emails). ``attachments`` are references made into files at send time (see the module's
    docstring). A second call with the same ``dedupe_key`` returns the existing row and queues
    nothing: a webhook delivered twice sends one email.
    """
    if kind not in EmailKind.values:
        raise ValueError(f"Unknown email kind {kind!r}.")
    subject = " ".join(subject.split())
    if len(subject) > 200:
        raise ValueError("An email needs a one-line subject of at most 200 characters.")
    with transaction.atomic():
        email, created = OutboundEmail.objects.get_or_create(
            dedupe_key=dedupe_key,
            defaults={
                "order": related,
                "kind": kind,
                "recipient": to,
                "subject": subject,
                "context": _plain(context),
                "forbidden_words": _forbidden(forbidden_words),
                "attachments": _attachments(attachments),
            },
        )
        if created:
            _enqueue_on_commit(email.pk)
        else:
            logger.info(
                "Email %s already queued (%s); not queuing again.", dedupe_key, email.status
            )
    return email


def email_queue_message(
    *,
    kind: str,
    to: str,
    subject: str,
    text: str,
    html: str = "",
    dedupe_key: str | None = None,
) -> OutboundEmail:
    """Queue an email its sender has already rendered (account emails), through ``email_queue``.

    Without a ``dedupe_key`` every call is a new email (each reset link is different); with one,
    a repeated call returns the existing row.
    """
    if kind not in PRERENDERED_KINDS:
        raise ValueError(f"Emails of kind {kind!r} are rendered from templates; use email_queue.")
    if not " ".join(subject.split()):
        raise ValueError("An email needs a one-line subject of at most 200 characters.")
    return email_queue(
        kind=kind,
        to=to,
        subject=subject,
        context={"text": text, "html": html},
        dedupe_key=dedupe_key or f"{kind}:{uuid.uuid4().hex}",
    )


def email_queue_digest(
    *, kind: str, to: str, entries: Iterable[tuple[int, dict]], day: date | None = None
) -> OutboundEmail | None:
    """One staff email listing items, each related order at most once a day per kind.

    ``entries`` is (order id, item) pairs in the order they should be listed; the item is plain
    data the ``emails/<kind>`` templates show as ``entries``. Orders already listed today are left
    out; if none is left, nothing is queued. Two concurrent runs: the first one's list stands.
    """
    day = day or timezone.localdate()
    entries = list(entries)
    with transaction.atomic():
        already = set(
            DigestEntry.objects.filter(
                kind=kind, day=day, order_id__in=[pk for pk, _ in entries]
            ).values_list("order_id", flat=True)
        )
        fresh = [(pk, item) for pk, item in entries if pk not in already]
        if not fresh:
            return None
        ids = ",".join(sorted(str(pk) for pk, _ in fresh))
        key = f"{kind}:{day.isoformat()}:{hashlib.sha256(ids.encode()).hexdigest()[:32]}"
        try:
            with transaction.atomic():
                email = OutboundEmail.objects.create(
                    kind=kind,
                    recipient=to,
                    context=_plain(
                        {"entries": [item for _, item in fresh], "day": day.isoformat()}
                    ),
                    dedupe_key=key,
                )
                DigestEntry.objects.bulk_create(
                    DigestEntry(email=email, order_id=pk, kind=kind, day=day) for pk, _ in fresh
                )
        except IntegrityError:
            logger.info("Digest %s for %s already queued by another run.", kind, day)
            return None
        _enqueue_on_commit(email.pk)
    return email


def email_resend(*, email: OutboundEmail, by=None) -> bool:
    """Staff asked for this email again: send it once more, whatever its dedupe key says.

    Sent, failed and waiting-to-retry rows are queued again with a fresh set of tries (the admin's
    log keeps the resend); a queued or sending row is already on its way. ``by`` (the member of
    staff) needs ``notifications.resend_email``; None is the shop itself.
    """
    require_permission(by, "notifications.resend_email", action="resend an email")
    with transaction.atomic():
        reset = OutboundEmail.objects.filter(
            pk=email.pk, status__in=[EmailStatus.SENT, EmailStatus.FAILED, EmailStatus.RETRYING]
        ).update(
            status=EmailStatus.QUEUED,
            attempts=0,
            next_attempt_at=None,
            reported_at=None,
            last_error="",
            updated_at=timezone.now(),
        )
        if reset:
            _enqueue_on_commit(email.pk)
    return bool(reset)


def _due(now) -> Q:
    """Rows a delivery may claim now: queued, due for a retry, or held by a worker that died."""
    return (
        Q(status=EmailStatus.QUEUED)
        | Q(status=EmailStatus.RETRYING, next_attempt_at__lte=now)
        | Q(status=EmailStatus.SENDING, updated_at__lt=now - SENDING_STALE_AFTER)
    )


def email_requeue_stale(*, never_tried_after: timedelta = NEVER_TRIED_AFTER) -> int:
    """The outbox's clock (beat, every minute): hand Celery every row whose turn has come.

    That is a row whose retry is due, one queued a minute ago that no worker has claimed (the
    broker was down at commit, or the message was lost) and one a dead worker held. Retries are
    scheduled here, on the row, not as Celery countdowns: a message held for hours by a worker
    would be redelivered by Redis after its visibility timeout or lost with the worker, and the
    row survives both. Handing a row over twice is harmless: ``email_send`` claims it once.
    """
    now = timezone.now()
    ids = list(
        OutboundEmail.objects.filter(
            Q(status=EmailStatus.QUEUED, updated_at__lt=now - never_tried_after)
            | Q(status=EmailStatus.RETRYING, next_attempt_at__lte=now)
            | Q(status=EmailStatus.SENDING, updated_at__lt=now - SENDING_STALE_AFTER)
        )
        .order_by("updated_at")
        .values_list("pk", flat=True)[:500]
    )

    def hand_over() -> None:
        for email_id in ids:
            if not _hand_to_celery(email_id):
                break  # the broker is still down: the next sweep tries again

    transaction.on_commit(hand_over)
    return len(ids)


# --- Delivery ---------------------------------------------------------------------------------


def retry_delay(*, attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed try: a minute, doubling, at most an hour.

    Up to a quarter more at random, so the backlog of a long outage does not all come back in
    the same minute.
    """
    first, most = settings.EMAIL_RETRY_FIRST_SECONDS, settings.EMAIL_RETRY_MAX_SECONDS
    seconds = min(first * 2 ** min(max(attempts - 1, 0), 20), most)
    return timedelta(seconds=seconds * random.uniform(1.0, 1.25))


def failure_is_temporary(exc: BaseException) -> bool:
    """Whether trying again later may succeed.

    Yes for an unreachable or silent server, a 4xx answer ("not now") or a refused login (the
    operator fixes it); no for a 5xx refusal of this message or of all its recipients, a bad
    address, a template bug or an unsafe subject, which no retry changes.
    """
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return any(not 500 <= code < 600 for code, _ in exc.recipients.values())
    if isinstance(exc, (smtplib.SMTPSenderRefused, smtplib.SMTPDataError)):
        return not 500 <= exc.smtp_code < 600
    if isinstance(exc, AnymailAPIError):
        return exc.status_code not in (400, 422)  # the service judged the message itself bad
    return isinstance(exc, RETRYABLE_ERRORS)


def _record_failure(
    *, log_id: int, attempts: int, exc: BaseException, subject: str, final_attempt: bool
) -> str:
    """Park the claimed row: waiting to retry while a retry may help and tries are left, else failed."""
    now = timezone.now()
    retry = (
        failure_is_temporary(exc) and not final_attempt and attempts < settings.EMAIL_MAX_ATTEMPTS
    )
    status = EmailStatus.RETRYING if retry else EmailStatus.FAILED
    OutboundEmail.objects.filter(pk=log_id, status=EmailStatus.SENDING).update(
        status=status,
        next_attempt_at=now + retry_delay(attempts=attempts) if retry else None,
        subject=subject[:200],
        last_error=f"{type(exc).__name__}: {exc}"[:2000],
        updated_at=now,
    )
    return status


def email_send(*, log_id: int, final_attempt: bool = False) -> bool:
    """Deliver one outbox row; True if this call sent it, False if there was nothing to do.

    The claim is one guarded UPDATE (queued, or due for a retry, to sending): of two deliveries
    racing for a row (a redelivered message, two sweeps) one wins and the other finds nothing
    to do. On failure the row records the error and waits to retry or is failed for good (see
    ``failure_is_temporary``, ``EMAIL_MAX_ATTEMPTS``, ``final_attempt``), and the error is raised.
    """
    now = timezone.now()
    claimed = OutboundEmail.objects.filter(_due(now), pk=log_id).update(
        status=EmailStatus.SENDING, attempts=F("attempts") + 1, next_attempt_at=None, updated_at=now
    )
    if not claimed:
        logger.info("Email %s is not due to be sent; nothing to do.", log_id)
        return False

    email = OutboundEmail.objects.get(pk=log_id)
    subject = ""
    try:
        message = email_render(email=email)
        subject = message.subject
        message.send()
    except Exception as exc:
        status = _record_failure(
            log_id=log_id,
            attempts=email.attempts,
            exc=exc,
            subject=subject,
            final_attempt=final_attempt,
        )
        logger.warning(
            "Email %s (%s) attempt %s failed (%s): %s",
            log_id,
            email.kind,
            email.attempts,
            status,
            exc,
        )
        raise
    sent_at = timezone.now()
    OutboundEmail.objects.filter(pk=log_id).update(
        status=EmailStatus.SENT,
        subject=subject[:200],
        sent_at=sent_at,
        last_error="",
        updated_at=sent_at,
    )
    return True


def failed_emails_digest() -> OutboundEmail | None:
    """Tell staff, once, about each email the outbox gave up on, so someone resends it.

    Rows are locked (``skip_locked``) and marked reported in the same transaction as the digest
    is queued: two runs at once never list an email twice. The digest's own failures are left to
    the admin index and the metrics, not to another digest.
    """
    with transaction.atomic():
        failed = list(
            OutboundEmail.objects.select_for_update(skip_locked=True)
            .filter(status=EmailStatus.FAILED, reported_at__isnull=True)
            .exclude(kind=EmailKind.STAFF_EMAILS_FAILED)
            .order_by("created_at")[:200]
        )
        if not failed:
            return None
        site = settings.SITE_URL.rstrip("/")
        entries = [
            {
                "kind": email.get_kind_display(),
                "recipient": email.recipient,
                "queued_display": formats.date_format(
                    timezone.localtime(email.created_at), "DATETIME_FORMAT"
                ),
                "error": email.last_error.split(":", 1)[0][:100],
                "admin_url": site
                + reverse("admin:notifications_outboundemail_change", args=[email.pk]),
            }
            for email in failed
        ]
        ids = ",".join(str(email.pk) for email in failed)
        digest = email_queue(
            kind=EmailKind.STAFF_EMAILS_FAILED,
            to=settings.PHARMACY_STAFF_EMAIL,
            context={"entries": entries},
            dedupe_key=f"{EmailKind.STAFF_EMAILS_FAILED}:{hashlib.sha256(ids.encode()).hexdigest()[:32]}",
        )
        OutboundEmail.objects.filter(pk__in=[email.pk for email in failed]).update(
            reported_at=timezone.now()
        )
    return digest


# --- Rendering --------------------------------------------------------------------------------


def _letterhead() -> dict:
    """What every email shows whoever sent it: the pharmacy's legal details, from settings."""
    return {
        "site_url": settings.SITE_URL.rstrip("/"),
        "pharmacy": {
            "name": settings.PHARMACY_NAME,
            "licence_number": settings.PHARMACY_LICENCE_NUMBER,
            "pharmacist_in_charge": settings.PHARMACIST_IN_CHARGE,
            "phone": settings.PHARMACY_PHONE,
            "email": settings.PHARMACY_EMAIL,
            "address": settings.PHARMACY_ADDRESS,
        },
    }


def email_render(*, email: OutboundEmail) -> EmailMultiAlternatives:
    """The message from the stored row alone: the same email on every attempt and resend."""
    if email.subject and email.kind in PRERENDERED_KINDS:
        subject, text, html = (
            email.subject,
            email.context.get("text", ""),
            email.context.get("html", ""),
        )
    else:
        context = {**(email.context or {}), **_letterhead(), "kind": email.kind}
        base = f"emails/{email.kind}"
        subject = " ".join(render_to_string(f"{base}_subject.txt", context).split())
        text = render_to_string(f"{base}.txt", context)
        html = render_to_string(f"{base}.html", context)
    if any(word in subject.casefold() for word in email.forbidden_words or ()):
        raise UnsafeSubjectError(
            f"The subject of a {email.kind} email names a forbidden word; not sending it."
        )
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[email.recipient],
        reply_to=[settings.PHARMACY_EMAIL],
        headers={"X-Pharmacy-Email-Id": str(email.pk)},
    )
    if html:
        message.attach_alternative(html, "text/html")
    for spec in email.attachments or ():
        attachment = _attachment(spec)
        if attachment is not None:
            message.attach(*attachment)
    return message


def _attachment(spec: dict) -> tuple[str, bytes, str] | None:
    """(filename, content, MIME type) from the renderer the reference names, or None when the
    renderer says there is nothing to attach (its subject has no such document).

    A failure fails the email (staff see it in the digest and resend it): the error names the
    renderer and the exception's type, never its text, which could quote the document.
    """
    name = spec.get("renderer")
    path = settings.EMAIL_ATTACHMENT_RENDERERS.get(name)
    if path is None:
        raise AttachmentError(f"Unknown attachment renderer {name!r}.")
    try:
        made = import_string(path)(**(spec.get("args") or {}))
    except Exception as exc:  # noqa: BLE001 - any failure: the same defined outcome, text withheld
        raise AttachmentError(
            f"The {name} attachment could not be made ({type(exc).__name__})."
        ) from None
    return made
