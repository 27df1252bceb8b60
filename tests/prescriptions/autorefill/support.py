"""Helpers for the auto-refill tests: a prescription on file opted in with a card saved through
a SetupIntent (as the browser's Stripe.js confirms it), and dates moved instead of the clock."""

from __future__ import annotations

from datetime import timedelta

import stripe
from django.utils import timezone

from prescriptions import autorefill as service
from prescriptions.models import AutoRefill, PrescriptionOnFile
from tests.localstripe import CARD_OK, _use
from tests.prescriptions.refills.support import approve_first_order

ADDRESS = service.Address(
    name="Jane Doe", line1="100 River Street", city="Albany", state="NY", zip_code="12207"
)


def browser_save_card(*, base: str, client_secret: str, card_number: str = CARD_OK) -> dict:
    """What Stripe.js ``confirmCardSetup`` does with the card typed in the browser."""
    _use(base)
    setup_intent = client_secret.split("_secret_")[0]
    try:
        return stripe.SetupIntent.confirm(
            setup_intent,
            client_secret=client_secret,
            payment_method_data={
                "type": "card",
                "card": {"number": card_number, "exp_month": 12, "exp_year": 2034, "cvc": "123"},
            },
        ).to_dict()
    except stripe.CardError as exc:
        return {"error": exc.user_message}


def opt_in(localstripe, record, tier, *, card: str = CARD_OK) -> AutoRefill:
    autorefill, secret, _quote = service.autorefill_start(
        user=record.user,
        record_id=record.pk,
        tier_id=tier.pk,
        address=ADDRESS,
        shipping_method="standard",
    )
    browser_save_card(base=localstripe.base, client_secret=secret, card_number=card)
    return service.autorefill_confirm(
        user=record.user, record_id=record.pk, setup_intent_id=autorefill.stripe_setup_intent_id
    )


def on_file(localstripe, tier, *, refills: int = 3, filled_days_ago: int = 0, **kwargs):
    """A prescription on file (baclofen 90 at 3 a day: 30 days' supply, refill from day 23)."""
    _user, _order, record = approve_first_order(localstripe, tier, refills=refills, **kwargs)
    if filled_days_ago:
        set_last_fill(record, days_ago=filled_days_ago)
    return record


def set_last_fill(record, *, days_ago: int) -> None:
    PrescriptionOnFile.objects.filter(pk=record.pk).update(
        last_filled_on=timezone.localdate() - timedelta(days=days_ago)
    )
    record.refresh_from_db()


def due_today(autorefill: AutoRefill) -> None:
    AutoRefill.objects.filter(pk=autorefill.pk).update(next_due_on=timezone.localdate())
    autorefill.refresh_from_db()
