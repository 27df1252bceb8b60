"""Stripe webhook deliveries: recorded while Stripe waits, acted on later in a Celery task.

Why: Stripe wants a 2xx within seconds and retries otherwise; acting on an event means one or two
Stripe calls (reading the PaymentIntent, capturing it) and emails. So the view only verifies the
signature, records the event (``StripeEvent``, one row per event id) and queues
``orders.process_stripe_event``; the task does the work through ``services.stripe_event_process``
(``order_sync_payment``, the one
idempotent path that reads the PaymentIntent from Stripe and moves the order.

Idempotency: a repeated delivery of a processed event is acknowledged and not queued again; an
event that is recorded but not processed (the task failed, or the broker lost it) is queued again
by the next delivery and by ``orders.tasks.retry_stripe_events`` (every few minutes, from beat). Two runs at
once for one event are harmless: ``order_sync_payment`` locks the order and only moves it forward.
A validly signed body that is not an event is kept in the log (marked with its error) and refused.
"""

from __future__ import annotations

import hashlib
import json

from django.db import IntegrityError
from django.utils import timezone

from .models import StripeEvent

MALFORMED_TYPE = "(malformed)"
MALFORMED_BODY_LIMIT = 64 * 1024


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
