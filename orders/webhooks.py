"""Stripe webhook deliveries: recorded while Stripe waits, acted on later in a Celery task.

Why: Stripe wants a 2xx within seconds and retries otherwise; acting on an event means one or two
Stripe calls (reading the PaymentIntent, capturing it) and emails. So the view only verifies the
signature, records the event (``StripeEvent``, one row per event id) and queues
``orders.process_stripe_event``; the task does the work through ``order_sync_payment``, the one
idempotent path that reads the PaymentIntent from Stripe and moves the order.

Idempotency: a repeated delivery of a processed event is acknowledged and not queued again; an
event that is recorded but not processed (the task failed, or the broker lost it) is queued again
by the next delivery and by ``stripe_events_retry`` (every few minutes, from beat). Two runs at
once for one event are harmless: ``order_sync_payment`` locks the order and only moves it forward.
A validly signed body that is not an event is kept in the log (marked with its error) and refused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from . import services
from .models import Order, StripeEvent

logger = logging.getLogger(__name__)

HANDLED_EVENTS = frozenset(
    {
        "payment_intent.succeeded",
        "payment_intent.amount_capturable_updated",
        "payment_intent.payment_failed",
        "payment_intent.canceled",
        "charge.refunded",
    }
)
MALFORMED_TYPE = "(malformed)"
MALFORMED_BODY_LIMIT = 64 * 1024
# Events left unprocessed are retried for this long (Stripe itself retries for 3 days).
RETRY_WINDOW = timedelta(days=3)
RETRY_AFTER = timedelta(minutes=2)


def stripe_event_problem(*, event: dict) -> str:
    """Why a signed event cannot be kept as it is ("" if it can): the log's columns have limits and
    PostgreSQL stores no NUL character. Stripe's own ids and types are far shorter; such an event
    is refused with the reason, not stored."""
    for field, value in (("id", event["id"]), ("type", event["type"])):
        limit = StripeEvent._meta.get_field("event_id" if field == "id" else field).max_length
        if len(value) > limit:
            return f"The event's {field} is {len(value)} characters long; at most {limit} are accepted."
    if "\\u0000" in json.dumps(event):
        return "The event contains a NUL character."
    return ""


def stripe_event_record(*, event: dict) -> tuple[StripeEvent, bool]:
    """Log a verified event once; return it and whether it still needs processing (then queue it)."""
    try:
        record, _created = StripeEvent.objects.get_or_create(
            event_id=event["id"], defaults={"type": event["type"], "payload": event}
        )
    except IntegrityError:  # the same event delivered twice at once: the other delivery queues it
        return StripeEvent.objects.get(event_id=event["id"]), False
    return record, not record.processed


def stripe_event_queue(*, record: StripeEvent) -> None:
    """Queue the processing once the row is committed (the worker must be able to read it)."""
    from .tasks import process_stripe_event

    transaction.on_commit(lambda: _enqueue(process_stripe_event, record.pk))


def _enqueue(task, record_id: int) -> None:
    from pharmacy.celery import publish_bounded

    try:  # bounded: Stripe waits on this answer (CELERY_PUBLISH_TIMEOUT, one try)
        publish_bounded(task, record_id)
    except Exception:  # the broker is down: the row stays unprocessed for the sweep
        logger.exception(
            "Could not queue Stripe event %s; the periodic retry will pick it up", record_id
        )


def stripe_malformed_record(*, body: bytes, reason: str) -> StripeEvent:
    """Keep a validly signed delivery that is not an event, for staff to look at (it is not acted on)."""
    text = body[:MALFORMED_BODY_LIMIT].decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    digest = hashlib.sha256(body).hexdigest()
    record, _ = StripeEvent.objects.get_or_create(
        event_id=f"malformed:{digest}",
        defaults={
            "type": MALFORMED_TYPE,
            "payload": {
                "body": text,
                "length": len(body),
                "truncated": len(body) > MALFORMED_BODY_LIMIT,
            },
            "processed": True,
            "processed_at": timezone.now(),
            "error": reason[:2000],
        },
    )
    return record


def stripe_event_process(*, record_id: int) -> bool:
    """Act on a recorded event (the task's body); True when done. Raises when Stripe failed."""
    record = StripeEvent.objects.filter(pk=record_id).first()
    if record is None or record.processed:
        return True
    try:
        if record.type in HANDLED_EVENTS:
            order = _order_for_event(record.payload.get("data", {}).get("object", {}))
            if order is not None:
                services.order_sync_payment(order_id=order.pk)
    except Exception as exc:
        logger.exception("Stripe event %s failed", record.event_id)
        StripeEvent.objects.filter(pk=record.pk).update(error=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    StripeEvent.objects.filter(pk=record.pk).update(
        processed=True, error="", processed_at=timezone.now()
    )
    return True


def stripe_events_retry() -> int:
    """Queue again every recent event that is still unprocessed (failed, or its task was lost)."""
    from .tasks import process_stripe_event

    now = timezone.now()
    ids = list(
        StripeEvent.objects.filter(
            processed=False, received_at__gte=now - RETRY_WINDOW, received_at__lte=now - RETRY_AFTER
        ).values_list("pk", flat=True)
    )
    for record_id in ids:
        _enqueue(process_stripe_event, record_id)
    return len(ids)


def _order_for_event(obj: dict) -> Order | None:
    order_id = (obj.get("metadata") or {}).get("order_id")
    if order_id:
        order = Order.objects.filter(pk=order_id).first() if _is_uuid(order_id) else None
        if order is not None:
            return order
    intent_id = (
        obj.get("id") if obj.get("object") == "payment_intent" else obj.get("payment_intent")
    )
    if isinstance(intent_id, dict):
        intent_id = intent_id.get("id")
    if not isinstance(intent_id, str):
        return None
    return Order.objects.filter(stripe_payment_intent_id=intent_id).first() if intent_id else None


def _is_uuid(value) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True
