"""A generic outbox: queue, send once, retry, resend, dedupe, and a guard on subject lines.

It knows nothing of orders or accounts. The app that owns an email's subject matter builds its
context (plain JSON data: amounts already formatted, links absolute, lines as dicts), chooses its
recipient, dedupe key and the words its subject must never contain, and calls ``email_queue``
inside its transaction (``orders.emails`` for order emails, ``accounts.adapter`` for account
emails). The row keeps that context, so a retry or a resend renders the very same email.

``email_queue`` writes the row and hands its id to Celery only once the caller's transaction
commits, so a rolled-back payment or review never emails anyone. ``email_send`` is what the
Celery task runs: it claims the row with a compare-and-set on ``status`` so that two deliveries
of the same task (a redelivered message, the stale-row sweeper, a resend) can never both send.
"""
from __future__ import annotations

import hashlib
import json
import logging
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
from django.utils import timezone

from pharmacy.permissions import require_permission

from .models import PRERENDERED_KINDS, DigestEntry, EmailKind, EmailStatus, OutboundEmail

logger = logging.getLogger(__name__)

#: Failures worth trying again later: the mail server or the email service was unreachable or
#: said "not now". Anything else (a template bug, an unsafe subject) fails the email at once.
RETRYABLE_ERRORS: tuple[type[BaseException], ...] = (smtplib.SMTPException, OSError, AnymailAPIError)

#: A row left in "sending" longer than the task's hard time limit belongs to a worker that died
#: mid-send; it may be claimed again (at-least-once delivery for that rare case).
SENDING_STALE_AFTER = timedelta(seconds=getattr(settings, "CELERY_TASK_TIME_LIMIT", 120) + 30)
# A queued row no worker has tried this long after it was written was never handed over (or lost).
NEVER_TRIED_AFTER = timedelta(minutes=1)


class UnsafeSubjectError(ValueError):
    """A rendered subject names a word its sender forbade (a medicine): it would leak health details."""


# --- Queuing ----------------------------------------------------------------------------------


def _plain(context: dict) -> dict:
    """The context as JSON, or TypeError: the sender formats its figures, the outbox stores text."""
    try:
        return json.loads(json.dumps(context))
    except TypeError as exc:
        raise TypeError(f"An email's context must be plain JSON data (format amounts first): {exc}") from exc


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
            email_id, type(exc).__name__, exc,
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
) -> OutboundEmail:
    """Record the email and send it after the caller's transaction commits; the one way in.

    ``context`` is what the templates ``emails/<kind>{_subject.txt,.txt,.html}`` render at send
    time, or, with ``subject`` given, ``{"text", "html"}`` already rendered by the sender.
    ``forbidden_words`` must never appear in the subject (checked when it is rendered).
    ``related`` is the order the email is about, for the admin's link (None for most account
    emails). A second call with the same ``dedupe_key`` returns the existing row and queues
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
            },
        )
        if created:
            _enqueue_on_commit(email.pk)
        else:
            logger.info("Email %s already queued (%s); not queuing again.", dedupe_key, email.status)
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
            DigestEntry.objects.filter(kind=kind, day=day, order_id__in=[pk for pk, _ in entries]).values_list(
                "order_id", flat=True
            )
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
                    context=_plain({"entries": [item for _, item in fresh], "day": day.isoformat()}),
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

    Only sent or failed rows are reset; a queued or sending row is already on its way. ``by``
    (the member of staff) needs ``notifications.resend_email``; None is the shop itself.
    """
    require_permission(by, "notifications.resend_email", action="resend an email")
    with transaction.atomic():
        reset = OutboundEmail.objects.filter(
            pk=email.pk, status__in=[EmailStatus.SENT, EmailStatus.FAILED]
        ).update(status=EmailStatus.QUEUED, last_error="", updated_at=timezone.now())
        if reset:
            _enqueue_on_commit(email.pk)
    return bool(reset)


def email_requeue_stale(
    *, older_than: timedelta = timedelta(minutes=15), never_tried_after: timedelta = NEVER_TRIED_AFTER
) -> int:
    """Hand Celery again the rows it never got (broker down at commit) or lost (worker died).

    A row never tried (``attempts == 0``) a minute after it was queued was not handed over (a
    broker blip at commit) or its message was lost: it goes again at once, so a customer's email
    is late by a minute or two, not a quarter of an hour. Rows that failed and wait for Celery's
    retry (attempts > 0, backoff up to 10 minutes) are only picked after ``older_than``; a
    duplicate hand-off would be harmless anyway, the claim in ``email_send`` sends once.
    """
    now = timezone.now()
    cutoff = now - older_than
    stale_sending = now - SENDING_STALE_AFTER
    ids = list(
        OutboundEmail.objects.filter(
            Q(status=EmailStatus.QUEUED, updated_at__lt=cutoff)
            | Q(status=EmailStatus.QUEUED, attempts=0, updated_at__lt=now - never_tried_after)
            | Q(status=EmailStatus.SENDING, updated_at__lt=min(cutoff, stale_sending))
        ).values_list("pk", flat=True)[:500]
    )

    def hand_over() -> None:
        for email_id in ids:
            if not _hand_to_celery(email_id):
                break  # the broker is still down: the next sweep tries again

    transaction.on_commit(hand_over)
    return len(ids)


# --- Delivery ---------------------------------------------------------------------------------


def email_send(*, log_id: int, final_attempt: bool = False) -> bool:
    """Deliver one outbox row; True if this call sent it, False if there was nothing to do.

    On failure the row records the attempt and the error and the exception is re-raised so the
    task can retry; the row is marked failed if the error is not retryable or this was the last try.
    """
    now = timezone.now()
    claimed = (
        OutboundEmail.objects.filter(pk=log_id)
        .filter(Q(status=EmailStatus.QUEUED) | Q(status=EmailStatus.SENDING, updated_at__lt=now - SENDING_STALE_AFTER))
        .update(status=EmailStatus.SENDING, attempts=F("attempts") + 1, updated_at=now)
    )
    if not claimed:
        logger.info("Email %s is not waiting to be sent; nothing to do.", log_id)
        return False

    email = OutboundEmail.objects.get(pk=log_id)
    subject = ""
    try:
        message = email_render(email=email)
        subject = message.subject
        message.send()
    except Exception as exc:
        retryable = isinstance(exc, RETRYABLE_ERRORS)
        status = EmailStatus.QUEUED if retryable and not final_attempt else EmailStatus.FAILED
        OutboundEmail.objects.filter(pk=log_id, status=EmailStatus.SENDING).update(
            status=status,
            subject=subject[:200],
            last_error=f"{type(exc).__name__}: {exc}"[:2000],
            updated_at=timezone.now(),
        )
        logger.warning("Email %s (%s) attempt %s failed: %s", log_id, email.kind, email.attempts, exc)
        raise
    sent_at = timezone.now()
    OutboundEmail.objects.filter(pk=log_id).update(
        status=EmailStatus.SENT, subject=subject[:200], sent_at=sent_at, last_error="", updated_at=sent_at
    )
    return True


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
        subject, text, html = email.subject, email.context.get("text", ""), email.context.get("html", "")
    else:
        context = {**(email.context or {}), **_letterhead(), "kind": email.kind}
        base = f"emails/{email.kind}"
        subject = " ".join(render_to_string(f"{base}_subject.txt", context).split())
        text = render_to_string(f"{base}.txt", context)
        html = render_to_string(f"{base}.html", context)
    if any(word in subject.casefold() for word in email.forbidden_words or ()):
        raise UnsafeSubjectError(f"The subject of a {email.kind} email names a forbidden word; not sending it.")
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
    return message
