"""Queue and deliver transactional emails.

``email_queue`` is called by other apps' services inside their transaction; it writes an outbox row
and hands the row id to Celery only once that transaction commits, so a rolled-back payment or
review never emails anyone. ``email_send`` is what the Celery task runs: it claims the row with a
compare-and-set on ``status`` so that two deliveries of the same task (a redelivered message, the
stale-row sweeper, a resend) can never both send.
"""
from __future__ import annotations

import hashlib
import logging
import smtplib
import uuid
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote

from anymail.exceptions import AnymailAPIError
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import formats, timezone
from djmoney.money import Money

from orders.models import Order
from pharmacy.permissions import require_permission
from orders.state import PaymentStatus

from .models import (
    PRERENDERED_KINDS,
    REPEATABLE_KINDS,
    STAFF_KINDS,
    DigestEntry,
    EmailKind,
    EmailStatus,
    OutboundEmail,
)

logger = logging.getLogger(__name__)

#: Failures worth trying again later: the mail server or the email service was unreachable or
#: said "not now". Anything else (a template bug, an unsafe subject) fails the email at once.
RETRYABLE_ERRORS: tuple[type[BaseException], ...] = (smtplib.SMTPException, OSError, AnymailAPIError)

#: A row left in "sending" longer than the task's hard time limit belongs to a worker that died
#: mid-send; it may be claimed again (at-least-once delivery for that rare case).
SENDING_STALE_AFTER = timedelta(seconds=getattr(settings, "CELERY_TASK_TIME_LIMIT", 120) + 30)


#: "We've received your order" means "your card is held": never before the authorisation.
_AFTER_AUTHORISATION = frozenset({EmailKind.ORDER_RECEIVED, EmailKind.STAFF_NEW_ORDER})
_HELD_OR_PAID = frozenset(
    {PaymentStatus.AUTHORIZED, PaymentStatus.CAPTURED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED}
)


class UnsafeSubjectError(ValueError):
    """A rendered subject names something from the order: it would leak health details."""


# --- Queuing ----------------------------------------------------------------------------------


def email_dedupe_key(*, order_id: Any, kind: str, event_id: Any = None) -> str:
    key = f"{order_id}:{kind}"
    if kind in REPEATABLE_KINDS:
        if event_id in (None, ""):
            raise ValueError(f"Emails of kind {kind!r} can repeat; pass the event_id that caused this one.")
        key = f"{key}:{event_id}"
    return key


def _jsonable(value: Any) -> Any:
    """The row's context is JSON: money is stored as the customer will read it ("$12.50")."""
    if isinstance(value, Money):
        return str(value)
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    return value


def _recipient_for(*, order, kind: str) -> str:
    if kind in STAFF_KINDS:
        return settings.PHARMACY_STAFF_EMAIL
    return order.email


def _hand_to_celery(email_id: int) -> bool:
    """Give the row's id to Celery; False (logged) if the broker cannot take it right now.

    Bounded (``CELERY_PUBLISH_TIMEOUT``, one try) so an unreachable or silent Redis costs the
    request well under a second; the row stays queued and ``email_requeue_stale`` (every 5
    minutes) hands it over again. Never raises: the caller's work is already committed.
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
    order,
    kind: str,
    context_extra: dict | None = None,
    event_id: Any = None,
) -> OutboundEmail:
    """Record the email and send it after the caller's transaction commits.

    A second call with the same (order, kind[, event_id]) returns the existing row and queues
    nothing: a webhook delivered twice sends one email.
    """
    if kind not in EmailKind.values:
        raise ValueError(f"Unknown email kind {kind!r}.")
    if kind == EmailKind.STAFF_AUTHORISATIONS_EXPIRING:
        raise ValueError("Use email_queue_authorisations_expiring for the daily digest.")
    if kind in _AFTER_AUTHORISATION and order.payment_status not in _HELD_OR_PAID:
        raise ValueError(f"A {kind} email is sent once the card is authorised, not while the payment is {order.payment_status}.")
    key = email_dedupe_key(order_id=order.pk, kind=kind, event_id=event_id)
    with transaction.atomic():
        email, created = OutboundEmail.objects.get_or_create(
            dedupe_key=key,
            defaults={
                "order": order,
                "kind": kind,
                "recipient": _recipient_for(order=order, kind=kind),
                "context": _jsonable(context_extra or {}),
            },
        )
        if created:
            _enqueue_on_commit(email.pk)
        else:
            logger.info("Email %s already queued (%s); not queuing again.", key, email.status)
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
    """Queue an email another app has already rendered (account emails): plain data in, one row out.

    Same guarantees as ``email_queue``: written in the caller's transaction, handed to Celery on
    commit, retried, sent once. Without a ``dedupe_key`` every call is a new email (each reset
    link is different); with one, a repeated call returns the existing row.
    """
    if kind not in PRERENDERED_KINDS:
        raise ValueError(f"Emails of kind {kind!r} are rendered by the outbox; use email_queue.")
    subject = " ".join(subject.split())
    if not subject or len(subject) > 200:
        raise ValueError("An email needs a one-line subject of at most 200 characters.")
    key = dedupe_key or f"{kind}:{uuid.uuid4().hex}"
    with transaction.atomic():
        email, created = OutboundEmail.objects.get_or_create(
            dedupe_key=key,
            defaults={
                "kind": kind,
                "recipient": to,
                "subject": subject,
                "context": {"text": text, "html": html},
            },
        )
        if created:
            _enqueue_on_commit(email.pk)
    return email


def email_queue_authorisations_expiring(
    *, holds: Iterable[tuple[Any, datetime]], day: date | None = None
) -> OutboundEmail | None:
    """One staff email listing card holds that expire soon; each order is listed once a day.

    ``holds`` is (order, expires_at) pairs. Orders already listed today are left out; if none is
    left, nothing is queued.
    """
    day = day or timezone.localdate()
    kind = EmailKind.STAFF_AUTHORISATIONS_EXPIRING
    holds = list(holds)
    with transaction.atomic():
        already = set(
            DigestEntry.objects.filter(kind=kind, day=day, order__in=[order for order, _ in holds]).values_list(
                "order_id", flat=True
            )
        )
        fresh = sorted(
            ((order, expires_at) for order, expires_at in holds if order.pk not in already),
            key=lambda pair: pair[1],
        )
        if not fresh:
            return None
        ids = ",".join(sorted(str(order.pk) for order, _ in fresh))
        key = f"{kind}:{day.isoformat()}:{hashlib.sha256(ids.encode()).hexdigest()[:32]}"
        context = {
            "holds": [
                {
                    "number": str(order.number),
                    "expires_at": expires_at.isoformat(),
                    "admin_url": _admin_order_url(order),
                    "total": str(order.total),
                    "expires_display": formats.date_format(timezone.localtime(expires_at), "DATETIME_FORMAT"),
                }
                for order, expires_at in fresh
            ],
            "day": day.isoformat(),
        }
        try:
            with transaction.atomic():
                email = OutboundEmail.objects.create(
                    order=None,
                    kind=kind,
                    recipient=settings.PHARMACY_STAFF_EMAIL,
                    context=context,
                    dedupe_key=key,
                )
                DigestEntry.objects.bulk_create(
                    DigestEntry(email=email, order=order, kind=kind, day=day) for order, _ in fresh
                )
        except IntegrityError:
            # A concurrent run listed some of these orders first: theirs stands.
            logger.info("Authorisations digest for %s already queued by another run.", day)
            return None
        _enqueue_on_commit(email.pk)
    return email


def expiring_authorisations(*, now: datetime | None = None, within: timedelta | None = None) -> list[tuple[Any, datetime]]:
    """(order, expires_at) for card holds that lapse within ``within``; the soonest first.

    When a hold began and how long it lasts is the orders app's knowledge (``with_authorised_at``,
    ``hold_validity``); imported here because ``orders.prescriptions`` imports this module.
    """
    from orders.prescriptions import hold_validity, with_authorised_at

    now = now or timezone.now()
    within = within or timedelta(hours=getattr(settings, "AUTHORISATION_WARNING_HOURS", 24))
    validity = hold_validity()
    orders = (
        with_authorised_at(Order.objects.filter(payment_status=PaymentStatus.AUTHORIZED))
        .filter(authorised_at__gt=now - validity, authorised_at__lte=now - validity + within)
        .order_by("authorised_at")
    )
    return [(order, order.authorised_at + validity) for order in orders]


def email_queue_expiring_holds_digest(*, now: datetime | None = None) -> OutboundEmail | None:
    """The periodic job: warn staff about holds that expire within the day."""
    return email_queue_authorisations_expiring(holds=expiring_authorisations(now=now))


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


def email_requeue_stale(*, older_than: timedelta = timedelta(minutes=15)) -> int:
    """Hand Celery again the rows it never got (broker down at commit) or lost (worker died).

    Rows waiting for a retry are recent (the longest backoff is 10 minutes), so they are not
    picked; a duplicate hand-off would be harmless anyway, the claim in ``email_send`` sends once.
    """
    cutoff = timezone.now() - older_than
    stale_sending = timezone.now() - SENDING_STALE_AFTER
    ids = list(
        OutboundEmail.objects.filter(
            Q(status=EmailStatus.QUEUED, updated_at__lt=cutoff)
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

    email = OutboundEmail.objects.select_related("order").get(pk=log_id)
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


def absolute_url(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


def order_link(order) -> str:
    """The customer's signed link to their order page (works without signing in).

    The orders app owns the token (``orders.services.order_link``); imported here, not at module
    level, because orders' services import this module to queue their emails.
    """
    from orders.services import order_link as order_path

    return absolute_url(order_path(order))


#: Public tracking pages of the carriers staff type in most often; others get no link.
TRACKING_URLS = {
    "ups": "https://www.ups.com/track?tracknum={}",
    "usps": "https://tools.usps.com/go/TrackConfirmAction?tLabels={}",
    "fedex": "https://www.fedex.com/fedextrack/?trknbr={}",
    "dhl": "https://www.dhl.com/us-en/home/tracking/tracking-express.html?tracking-id={}",
}


def tracking_url(*, carrier: str, number: str) -> str:
    template = TRACKING_URLS.get("".join(carrier.split()).casefold())
    return template.format(quote(number.strip(), safe="")) if template and number.strip() else ""


def _admin_order_url(order) -> str:
    try:
        path = reverse("admin:orders_order_change", args=[order.pk])
    except NoReverseMatch:
        path = reverse("admin:index")
    return absolute_url(path)


def _forbidden_subject_words(order) -> set[str]:
    """Names that must never reach a subject line: every medicine in the order."""
    words: set[str] = set()
    if order is None:
        return words
    for line in order.lines.select_related("tier__dosage__product"):
        words.add(line.product_name)
        product = line.tier.dosage.product if line.tier_id else None
        if product is not None:
            words.update({product.name, product.active_ingredient})
            words.update(name.strip() for name in product.brand_names.split(","))
    return {word.casefold() for word in words if word and len(word.strip()) >= 3}


def email_context(*, email: OutboundEmail) -> dict:
    order = email.order
    is_staff_email = email.kind in STAFF_KINDS
    context: dict[str, Any] = {
        "kind": email.kind,
        "site_url": settings.SITE_URL.rstrip("/"),
        "pharmacy": {
            "name": settings.PHARMACY_NAME,
            "licence_number": settings.PHARMACY_LICENCE_NUMBER,
            "pharmacist_in_charge": settings.PHARMACIST_IN_CHARGE,
            "phone": settings.PHARMACY_PHONE,
            "email": settings.PHARMACY_EMAIL,
            "address": settings.PHARMACY_ADDRESS,
        },
        "order": order,
        "is_staff_email": is_staff_email,
    }
    if order is not None:
        lines = list(order.lines.all())
        if is_staff_email:
            context["line_count"] = len(lines)
            context["package_count"] = sum(line.packages for line in lines)
            context["admin_url"] = _admin_order_url(order)
        else:
            context["lines"] = lines
            context["order_url"] = order_link(order)
    if email.kind == EmailKind.SHIPPED and not (email.context or {}).get("tracking_url"):
        context["tracking_url"] = tracking_url(
            carrier=(email.context or {}).get("carrier", ""), number=(email.context or {}).get("tracking_number", "")
        )
    # Stored details (reason, tracking...) never shadow what is computed here (order, links).
    return {**(email.context or {}), **context}


def email_render(*, email: OutboundEmail) -> EmailMultiAlternatives:
    if email.kind in PRERENDERED_KINDS:
        subject, text, html = email.subject, email.context.get("text", ""), email.context.get("html", "")
    else:
        context = email_context(email=email)
        base = f"emails/{email.kind}"
        subject = " ".join(render_to_string(f"{base}_subject.txt", context).split())
        text = render_to_string(f"{base}.txt", context)
        html = render_to_string(f"{base}.html", context)
    forbidden = _forbidden_subject_words(email.order)
    if any(word in subject.casefold() for word in forbidden):
        raise UnsafeSubjectError(f"The subject of a {email.kind} email names a medicine; not sending it.")
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
