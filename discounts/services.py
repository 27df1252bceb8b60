"""May this code be used now, and counting its uses.

``discount_terms_for`` turns a code into plain terms (the JSON form of
``cart.calculations.DiscountRule``, which the calculation module applies; this app does not
import ``cart``, which sits above it), or refuses with a message fit to show (unknown, not yet valid,
expired, used up, used up by this email). Whether the rule fits the cart (applicable items,
minimum subtotal) is the calculation's to say, so the cart page and the order agree.

Uses are counted by ``discount_redeem`` when the order's card is authorised, under a lock on the
code's row: two customers paying for the last use at once are served one after the other, and
the second is told no. ``discount_release`` gives a use back when the order is canceled.

"Uses per customer" counts the uses of the customer's account (when the order was placed signed
in) and of their mailbox, always: the address as ``mailbox_normalise`` reduces it, so that
``Jane.Doe+spring@Gmail.com`` and ``janedoe@googlemail.com`` are one customer.
"""

from __future__ import annotations

import operator
from functools import reduce

from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from catalog.models import LegalClass

from .models import DiscountCode, DiscountRedemption


class DiscountRefused(ValueError):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def normalise(code: str) -> str:
    return (code or "").strip().upper()[:40]


#: Providers that ignore dots in the local part (and answer at both names).
DOTLESS_DOMAINS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}


def mailbox_normalise(email: str | None) -> str:
    """The mailbox an address delivers to, so one customer's variants share "uses per customer".

    The rule: lower-case the whole address; drop a ``+tag`` from the local part (``jane+spring@``
    is delivered to ``jane@`` by Gmail, Outlook, iCloud, Fastmail and most others); and only for
    Gmail (gmail.com, googlemail.com), which ignores dots in the local part, drop the dots and
    use gmail.com. Other providers keep the dots: ``j.doe@`` and ``jdoe@`` may be two people.
    """
    address = (email or "").strip().lower()
    local, at, domain = address.rpartition("@")
    if not at or not local:
        return address
    local = local.split("+", 1)[0] or local
    if domain in DOTLESS_DOMAINS:
        local, domain = local.replace(".", "") or local, DOTLESS_DOMAINS[domain]
    return f"{local}@{domain}"


def _terms(code: DiscountCode) -> dict:
    classes = {
        LegalClass.GENERAL_SALE: code.applies_to_general_sale,
        LegalClass.PHARMACY: code.applies_to_pharmacy,
        LegalClass.PRESCRIPTION: code.applies_to_prescription,
    }
    return {
        "code": code.code,
        "kind": code.kind,
        "value": str(code.value),
        "min_subtotal": str(code.min_subtotal),
        "legal_classes": sorted(str(c) for c, on in classes.items() if on),
        "product_ids": sorted(code.products.values_list("pk", flat=True)),
    }


def _uses(code: DiscountCode) -> QuerySet:
    return DiscountRedemption.objects.filter(code=code, released_at__isnull=True)


def _used_up(code: DiscountCode, *, email: str | None, user_id: int | None) -> str:
    """Why the code's uses are spent (in total, or by this customer), or ''; one query at most."""
    customer = [Q(mailbox=mailbox_normalise(email))] if email else []
    customer += [Q(user_id=user_id)] if user_id is not None else []
    counted = {"total": Count("pk")} if code.max_uses is not None else {}
    if customer and code.max_uses_per_email is not None:
        counted["customer"] = Count("pk", filter=reduce(operator.or_, customer))
    if not counted:
        return ""
    counts = _uses(code).aggregate(**counted)
    if "total" in counts and counts["total"] >= code.max_uses:
        return f"The code {code.code} has been used up."
    if "customer" in counts and counts["customer"] >= code.max_uses_per_email:
        return f"You have already used the code {code.code}."
    return ""


def _refusal(
    code: DiscountCode | None, typed: str, *, email: str | None, user_id: int | None, now
) -> str:
    if code is None or not code.is_active:
        return f"We don't know the code {typed}. Please check it and try again."
    if code.starts_at and now < code.starts_at:
        return f"The code {code.code} is not valid yet."
    if code.ends_at and now >= code.ends_at:
        return f"The code {code.code} has expired."
    return _used_up(code, email=email, user_id=user_id)


def discount_terms_for(
    *, code: str, email: str | None = None, user_id: int | None = None, now=None
) -> dict:
    """The terms of a code a customer typed, or ``DiscountRefused`` saying why not.

    ``email`` and ``user_id`` (the signed-in account) apply the per-customer limit; without
    either only the total is checked. A preview: the binding check is ``discount_redeem``'s."""
    typed = normalise(code)
    if not typed:
        raise DiscountRefused("Please enter a discount code.")
    found = DiscountCode.objects.filter(code=typed).first()
    refusal = _refusal(found, typed, email=email, user_id=user_id, now=now or timezone.now())
    if refusal:
        raise DiscountRefused(refusal)
    return _terms(found)


def discount_redeem(*, order, force: bool = False) -> bool:
    """Count the order's code as used (its card was just authorised). Idempotent.

    Returns False, counting nothing, if the code was used up (in total, or by this customer: its
    account or its mailbox) since the order was priced: the last use went to another order. The
    count runs under the lock on the code's row, in the transaction that records the use, so of
    two orders paying for the last use at once the second sees the first. ``force`` counts it
    regardless (the money was already captured, so the discount stands).
    """
    if not order.discount_code:
        return True
    with transaction.atomic():
        code = DiscountCode.objects.select_for_update().filter(code=order.discount_code).first()
        if code is None:
            return force
        existing = DiscountRedemption.objects.filter(order_id=order.id).first()
        if existing is not None and existing.released_at is None:
            return True
        if not force and _used_up(code, email=order.email, user_id=order.user_id):
            return False
        if existing is not None:
            existing.released_at = None
            existing.save(update_fields=["released_at"])
        else:
            DiscountRedemption.objects.create(
                code=code,
                order_id=order.id,
                order_number=order.number,
                email=order.email,
                mailbox=mailbox_normalise(order.email),
                user_id=order.user_id,
                amount=order.discount.amount,
            )
    return True


def discount_release(*, order) -> None:
    """Give the use back: the order was canceled or rejected. Idempotent."""
    if order.discount_code:
        DiscountRedemption.objects.filter(order_id=order.id, released_at__isnull=True).update(
            released_at=timezone.now()
        )


def discount_codes_with_uses():
    """For the admin: each code with its counted uses."""
    return DiscountCode.objects.annotate(
        uses=Count("redemptions", filter=Q(redemptions__released_at__isnull=True))
    )
