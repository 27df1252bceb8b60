"""Messages between a patient and the pharmacists: post, read, the staff inbox, the notice, export.

The rules (``docs/messages.md``), each kept here where the act happens:

* One thread per patient account, made with its first message. A patient writes only in their
  own thread and links only their own orders and prescriptions on file.
* A member of staff reads or answers only with ``prescriptions.answer_patient_messages``
  (``require_answer_permission``, called by every staff function here, not only by the pages).
* A message is never changed or deleted (``PatientMessage``); read marks and the waiting time
  live on the thread, which is locked while a message is added.
* The email that tells the patient a message is waiting names no medicine and no health detail:
  it says a message is waiting and links to sign in. One email until the patient has read the
  thread, however many messages the pharmacy sends meanwhile.
* A pharmacist's approval of a new prescription posts the counselling offer
  (``counselling_offer_post``); a guest order, with no account to write to, gets the offer in its
  approval email instead.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import Permission
from django.db import IntegrityError, transaction
from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from notifications.models import EmailKind, OutboundEmail
from notifications.services import email_queue_message
from orders.models import Order
from pharmacy.permissions import require_permission

from .message_models import MessageKind, MessageSender, MessageThread, PatientMessage
from .models import PrescriptionOnFile

MAX_LENGTH = PatientMessage._meta.get_field("body").max_length
ANSWER_PERMISSION = "prescriptions.answer_patient_messages"
#: How many threads the staff inbox lists (waiting ones first); the rest are reached from the
#: patient's orders on the review pages.
INBOX_LIMIT = 200


class MessageError(Exception):
    """A message that cannot be posted; the text is fit to show the person who wrote it."""


# --- Who may do what --------------------------------------------------------------------------


def can_answer_messages(user) -> bool:
    """Whether to show ``user`` the inbox link: the permission, in one query, cached on the user
    for the request (the header asks on every staff page). The acts check ``has_perm`` itself."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.is_superuser:
        return True
    cached = getattr(user, "_can_answer_messages", None)
    if cached is None:
        app, codename = ANSWER_PERMISSION.split(".")
        cached = (
            Permission.objects.filter(content_type__app_label=app, codename=codename)
            .filter(Q(user=user) | Q(group__user=user))
            .exists()
        )
        user._can_answer_messages = cached
    return cached


def require_answer_permission(user) -> None:
    """PermissionDenied unless ``user`` may read and answer patients' messages (a person only)."""
    require_permission(
        user, ANSWER_PERMISSION, action="read or answer patients' messages", system_allowed=False
    )


def patient_orders(patient) -> QuerySet[Order]:
    """The orders a patient may link a message to: their own, newest first."""
    return Order.objects.filter(user=patient).order_by("-created_at", "-number")


def patient_prescriptions(patient) -> QuerySet[PrescriptionOnFile]:
    return PrescriptionOnFile.objects.filter(user=patient).order_by("-created_at")


# --- Posting ----------------------------------------------------------------------------------


def _clean_body(body: str | None) -> str:
    body = (body or "").strip()
    if not body:
        raise MessageError("Please write your message.")
    if len(body) > MAX_LENGTH:
        raise MessageError(f"Please keep a message under {MAX_LENGTH} characters.")
    return body


def _check_links(*, patient, order: Order | None, prescription: PrescriptionOnFile | None) -> None:
    """A message links only the patient's own order and prescription on file."""
    if order is not None and order.user_id != patient.pk:
        raise MessageError("That order is not in this patient's account.")
    if prescription is not None and prescription.user_id != patient.pk:
        raise MessageError("That prescription is not on file for this patient.")


def _locked_thread(patient) -> MessageThread:
    """The patient's thread, made if needed, locked for the rest of the transaction."""
    try:
        with transaction.atomic():
            MessageThread.objects.get_or_create(patient=patient)
    except IntegrityError:  # made at the same moment by another request: it exists now
        pass
    return MessageThread.objects.select_for_update().get(patient=patient)


def _already_posted(thread: MessageThread, submission_key) -> PatientMessage | None:
    """The message this very form already posted (a double click), if any."""
    if not submission_key:
        return None
    existing = PatientMessage.objects.filter(submission_key=submission_key).first()
    if existing is not None and existing.thread_id != thread.pk:
        raise MessageError("This form was already used. Please reload the page.")
    return existing


def message_post_by_patient(
    *,
    patient,
    body: str,
    order: Order | None = None,
    prescription: PrescriptionOnFile | None = None,
    submission_key: uuid.UUID | None = None,
) -> PatientMessage:
    """The patient writes to the pharmacy; the thread now waits for an answer."""
    body = _clean_body(body)
    _check_links(patient=patient, order=order, prescription=prescription)
    with transaction.atomic():
        thread = _locked_thread(patient)
        existing = _already_posted(thread, submission_key)
        if existing is not None:
            return existing
        message = PatientMessage.objects.create(
            thread=thread,
            sender=MessageSender.PATIENT,
            author=patient,
            body=body,
            order=order,
            prescription=prescription,
            submission_key=submission_key,
        )
        thread.last_message_at = message.created_at
        thread.awaiting_reply_since = thread.awaiting_reply_since or message.created_at
        # Writing from the thread page means having seen it (the form sits under the messages).
        thread.patient_read_upto = max(thread.patient_read_upto, message.pk)
        thread.patient_read_at = message.created_at
        thread.save(
            update_fields=[
                "last_message_at",
                "awaiting_reply_since",
                "patient_read_upto",
                "patient_read_at",
            ]
        )
    return message


def message_post_by_pharmacist(
    *,
    patient,
    by,
    body: str,
    order: Order | None = None,
    prescription: PrescriptionOnFile | None = None,
    submission_key: uuid.UUID | None = None,
) -> PatientMessage:
    """A pharmacist answers (or writes first); the patient is emailed that a message waits."""
    require_answer_permission(by)
    body = _clean_body(body)
    _check_links(patient=patient, order=order, prescription=prescription)
    with transaction.atomic():
        thread = _locked_thread(patient)
        existing = _already_posted(thread, submission_key)
        if existing is not None:
            return existing
        message = PatientMessage.objects.create(
            thread=thread,
            sender=MessageSender.PHARMACY,
            author=by,
            body=body,
            order=order,
            prescription=prescription,
            submission_key=submission_key,
        )
        thread.last_message_at = message.created_at
        thread.awaiting_reply_since = None
        thread.pharmacy_read_upto = max(thread.pharmacy_read_upto, message.pk)
        thread.pharmacy_read_at = message.created_at
        thread.pharmacy_read_by = by
        thread.save(
            update_fields=[
                "last_message_at",
                "awaiting_reply_since",
                "pharmacy_read_upto",
                "pharmacy_read_at",
                "pharmacy_read_by",
            ]
        )
        notice_queue(thread=thread)
    return message


def counselling_offer_text(*, order: Order) -> str:
    return render_to_string(
        "prescriptions/messages/counselling_offer.txt",
        {"order_number": order.number, "phone": settings.PHARMACY_PHONE},
    ).strip()


def counselling_offer_post(*, order: Order, by) -> PatientMessage | None:
    """The offer to counsel that comes with a new prescription, posted when a pharmacist approves it.

    Called inside the approval's transaction, by the approval service (whose permission check
    covers it). Once per order (a database constraint); None for a guest order, whose approval
    email carries the offer. The approval email tells an account's patient about the message, so
    no "message waiting" email goes with it (one email per event). It does not count as an answer: a question the patient asked before
    still waits in the inbox.
    """
    if order.user_id is None:
        return None
    existing = PatientMessage.objects.filter(
        order=order, kind=MessageKind.COUNSELLING_OFFER
    ).first()
    if existing is not None:
        return existing
    with transaction.atomic():
        thread = _locked_thread(order.user)
        message = PatientMessage.objects.create(
            thread=thread,
            sender=MessageSender.PHARMACY,
            kind=MessageKind.COUNSELLING_OFFER,
            author=by,
            body=counselling_offer_text(order=order),
            order=order,
        )
        thread.last_message_at = message.created_at
        thread.save(update_fields=["last_message_at"])
        # No separate notice: the approval email, sent with it, says a pharmacist has written.
    return message


# --- The email notice -------------------------------------------------------------------------


def messages_sign_in_url() -> str:
    """Sign in, then the thread: the only link the notice carries."""
    query = urlencode({"next": reverse("messaging:thread")})
    return settings.SITE_URL.rstrip("/") + f"{reverse('accounts:login')}?{query}"


def notice_email_parts() -> tuple[str, str, str]:
    """(subject, text, html) of the notice. The same for every patient and every message: it can
    carry nothing about the patient's health because it is given nothing."""
    context = {
        "pharmacy": {
            "name": settings.PHARMACY_NAME,
            "licence_number": settings.PHARMACY_LICENCE_NUMBER,
            "pharmacist_in_charge": settings.PHARMACIST_IN_CHARGE,
            "phone": settings.PHARMACY_PHONE,
            "address": settings.PHARMACY_ADDRESS,
        },
        "sign_in_url": messages_sign_in_url(),
    }
    subject = " ".join(render_to_string("emails/pharmacy_message_subject.txt", context).split())
    return (
        subject,
        render_to_string("emails/pharmacy_message.txt", context),
        render_to_string("emails/pharmacy_message.html", context),
    )


def notice_queue(*, thread: MessageThread) -> OutboundEmail | None:
    """Tell the patient by email that a message waits: once per unread stretch (the dedupe key is
    the patient's read mark, which moves when they read the thread). Not for a closed account."""
    patient = thread.patient
    if not patient.is_active or getattr(patient, "closed_at", None):
        return None
    subject, text, html = notice_email_parts()
    return email_queue_message(
        kind=EmailKind.PHARMACY_MESSAGE,
        to=patient.email,
        subject=subject,
        text=text,
        html=html,
        dedupe_key=f"pharmacy_message:{thread.pk}:{thread.patient_read_upto}",
    )


# --- Reading ----------------------------------------------------------------------------------


def thread_of(patient) -> MessageThread | None:
    return MessageThread.objects.filter(patient=patient).first()


def thread_messages(thread: MessageThread | None) -> list[PatientMessage]:
    if thread is None:
        return []
    return list(
        thread.messages.select_related("author", "order", "prescription").order_by(
            "created_at", "id"
        )
    )


def thread_read_by_patient(*, thread: MessageThread, upto: int) -> None:
    """The patient has seen every message up to ``upto``; the mark only moves forward."""
    MessageThread.objects.filter(pk=thread.pk, patient_read_upto__lt=upto).update(
        patient_read_upto=upto, patient_read_at=timezone.now()
    )


def thread_read_by_pharmacy(*, thread: MessageThread, upto: int, by) -> None:
    require_answer_permission(by)
    MessageThread.objects.filter(pk=thread.pk, pharmacy_read_upto__lt=upto).update(
        pharmacy_read_upto=upto, pharmacy_read_at=timezone.now(), pharmacy_read_by=by
    )


def unread_for_patient(patient) -> int:
    """Messages from the pharmacy the patient has not seen yet."""
    return PatientMessage.objects.filter(
        thread__patient=patient,
        sender=MessageSender.PHARMACY,
        id__gt=F("thread__patient_read_upto"),
    ).count()


def unread_for_pharmacy(patient) -> int:
    return PatientMessage.objects.filter(
        thread__patient=patient,
        sender=MessageSender.PATIENT,
        id__gt=F("thread__pharmacy_read_upto"),
    ).count()


def waiting_count() -> int:
    """Threads whose patient waits for an answer: the staff header's number."""
    return MessageThread.objects.filter(awaiting_reply_since__isnull=False).count()


@dataclass(frozen=True)
class InboxRow:
    thread: MessageThread
    unread: int
    last_sender: str
    waiting: str  # "2 h 5 min", or "" when nobody waits


def waiting_text(since: datetime | None, now: datetime) -> str:
    if since is None:
        return ""
    seconds = max(0, int((now - since).total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, minutes = rest // 3600, (rest % 3600) // 60
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def inbox(*, by, now: datetime | None = None) -> list[InboxRow]:
    """Every thread with a message: those waiting for an answer first, the longest wait first;
    then the others, the latest message first. Unread counts per thread, in one query."""
    require_answer_permission(by)
    now = now or timezone.now()
    last_sender = PatientMessage.objects.filter(thread=OuterRef("pk")).order_by("-id")
    threads = (
        MessageThread.objects.filter(last_message_at__isnull=False)
        .select_related("patient")
        .annotate(
            unread=Count(
                "messages",
                filter=Q(
                    messages__sender=MessageSender.PATIENT,
                    messages__id__gt=F("pharmacy_read_upto"),
                ),
            ),
            last_sender=Subquery(last_sender.values("sender")[:1]),
        )
        .order_by(F("awaiting_reply_since").asc(nulls_last=True), "-last_message_at", "-id")
    )[:INBOX_LIMIT]
    return [
        InboxRow(
            thread=thread,
            unread=thread.unread,
            last_sender=thread.last_sender or "",
            waiting=waiting_text(thread.awaiting_reply_since, now),
        )
        for thread in threads
    ]


def author_label(message: PatientMessage, *, for_patient: bool) -> str:
    """Who wrote it, as the reader sees it: "You", or the pharmacist's first name and initial."""
    if message.sender == MessageSender.PATIENT:
        return "You" if for_patient else "Patient"
    author = message.author
    name = " ".join(
        part for part in (author.first_name, (author.last_name or "")[:1] + ".") if part != "."
    ).strip()
    return f"{name}, pharmacist" if name else "Pharmacist"


# --- Export -----------------------------------------------------------------------------------


def messages_export(*, user) -> list[dict]:
    """The patient's messages for the account's data export, oldest first, as the thread shows them."""
    thread = thread_of(user)
    rows = []
    for message in thread_messages(thread):
        mine = message.sender == MessageSender.PATIENT
        rows.append(
            {
                "sent_at": message.created_at.isoformat(),
                "from": author_label(message, for_patient=True),
                "kind": message.get_kind_display(),
                "text": message.body,
                "order": message.order.number if message.order_id else None,
                "prescription": (
                    f"{message.prescription.medicine} {message.prescription.strength}"
                    if message.prescription_id
                    else None
                ),
                "read_by_the_other_side": message.pk
                <= (thread.pharmacy_read_upto if mine else thread.patient_read_upto),
            }
        )
    return rows
