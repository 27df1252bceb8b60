"""Auto-refill's emails: the consent copy, the notice before each refill, the pause.

Subjects are fixed words (``templates/emails/autorefill_*_subject.txt``) and the medicine and
product names are given to the outbox as forbidden subject words besides. The bodies name the
prescription by its number, never the medicine: an email may be read by someone else. The
notice's links are signed (``notice_token``) so the patient can act on them without signing in;
the pages they open ask for a click before anything changes (mail scanners follow links).
"""

from __future__ import annotations

from datetime import date

from django.core import signing
from django.urls import reverse

from notifications.models import EmailKind
from notifications.services import email_queue
from orders.emails import absolute_url

from .models import AutoRefill, PauseReason

NOTICE_SALT = "prescriptions.autorefill.notice"
NOTICE_ACTIONS = ("skip", "date", "pause")

#: What the patient can do next, per reason for a pause (the email and the account page).
WHAT_NEXT = {
    PauseReason.PATIENT: "Turn it back on from your account whenever you like.",
    PauseReason.DECLINED: "Please save a card again in your account to turn it back on.",
    PauseReason.AUTHENTICATION: "Your bank wants you to confirm payments with this card: please save it again in your account (you will be asked to confirm), or use another card.",
    PauseReason.EXPIRED: "A refill needs a new prescription: please ask your prescriber for one.",
    PauseReason.NO_REFILLS: "A refill needs a new prescription: please ask your prescriber for one (we ask for a renewal when we can).",
    PauseReason.CONSENT_EXPIRED: "Auto-refill asks for your consent once a year: please turn it on again in your account.",
    PauseReason.PRICE_CHANGED: "Please check the new price in your account and turn auto-refill back on if it suits you.",
    PauseReason.UNAVAILABLE: "Please look at your prescription in your account; you can refill it by hand or turn auto-refill back on later.",
    PauseReason.CONTROLLED: "Please order it from your account; our pharmacist will help.",
}


def notice_token(autorefill: AutoRefill, due_on: date) -> str:
    return signing.dumps({"a": autorefill.pk, "d": due_on.isoformat()}, salt=NOTICE_SALT)


def notice_token_read(token: str) -> tuple[int, date] | None:
    """(auto-refill id, due date) from a notice link, or None if it was not signed by us."""
    try:
        data = signing.loads(token, salt=NOTICE_SALT)
        return int(data["a"]), date.fromisoformat(data["d"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None


def _forbidden(autorefill: AutoRefill) -> list[str]:
    record = autorefill.prescription
    return [record.medicine, record.dosage.product.name, *record.medicine.split()]


def public_what(autorefill: AutoRefill) -> str:
    return f"prescription no. {autorefill.prescription_id}, one pack as prescribed"


def _base(autorefill: AutoRefill) -> dict:
    return {
        "name": autorefill.ship_name or autorefill.prescription.patient_name,
        "prescription_number": autorefill.prescription_id,
        "manage_url": absolute_url(
            reverse("autorefill:manage", kwargs={"pk": autorefill.prescription_id})
        ),
    }


def _queue(autorefill: AutoRefill, kind: str, key: str, context: dict) -> None:
    email_queue(
        kind=kind,
        to=autorefill.user.email,
        context={**_base(autorefill), **context},
        dedupe_key=f"{kind}:{autorefill.pk}:{key}",
        forbidden_words=_forbidden(autorefill),
    )


def started(autorefill: AutoRefill, *, consent: str) -> None:
    _queue(
        autorefill,
        EmailKind.AUTOREFILL_STARTED,
        autorefill.consent_at.isoformat(),
        {"consent_text": consent},
    )


def notice(autorefill: AutoRefill, *, quote) -> None:
    token = notice_token(autorefill, quote.due_on)
    links = {
        f"{action}_url": absolute_url(
            reverse("autorefill:notice", kwargs={"token": token, "action": action})
        )
        for action in NOTICE_ACTIONS
    }
    _queue(
        autorefill,
        EmailKind.AUTOREFILL_NOTICE,
        quote.due_on.isoformat(),
        {
            "due_text": f"{quote.due_on:%B %-d, %Y}",
            "total": quote.total,
            "card": f"{autorefill.card_brand.title()} card ending {autorefill.card_last4}",
            "consent_until_text": f"{autorefill.consent_until:%B %-d, %Y}",
            **links,
        },
    )


def paused(autorefill: AutoRefill, *, reason: str) -> None:
    _queue(
        autorefill,
        EmailKind.AUTOREFILL_PAUSED,
        f"{reason}:{autorefill.updated_at.isoformat()}",
        {
            "reason": f"{PauseReason(reason).label.lower()}.",
            "what_next": WHAT_NEXT.get(reason, ""),
        },
    )
