"""May this code be used now, and counting its uses.

``discount_terms_for`` turns a code into plain terms (the JSON form of
``cart.calculations.DiscountRule``, which the calculation module applies; this app does not
import ``cart``, which sits above it), or refuses with a message fit to show (unknown, not yet valid,
expired, used up, used up by this email). Whether the rule fits the cart (applicable items,
minimum subtotal) is the calculation's to say, so the cart page and the order agree.

Uses are counted by ``discount_redeem`` when the order's card is authorised, under a lock on the
code's row: two customers paying for the last use at once are served one after the other, and
the second is told no. ``discount_release`` gives a use back when the order is canceled.
"""
from __future__ import annotations

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from catalog.models import LegalClass

from .models import DiscountCode, DiscountRedemption


class DiscountRefused(ValueError):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def normalise(code: str) -> str:
    return (code or "").strip().upper()[:40]


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


def _active_uses(code: DiscountCode, email: str | None = None) -> int:
    uses = DiscountRedemption.objects.filter(code=code, released_at__isnull=True)
    if email is not None:
        uses = uses.filter(email__iexact=email)
    return uses.count()


def _refusal(code: DiscountCode | None, typed: str, *, email: str | None, now) -> str:
    if code is None or not code.is_active:
        return f"We don't know the code {typed}. Please check it and try again."
    if code.starts_at and now < code.starts_at:
        return f"The code {code.code} is not valid yet."
    if code.ends_at and now >= code.ends_at:
        return f"The code {code.code} has expired."
    if code.max_uses is not None and _active_uses(code) >= code.max_uses:
        return f"The code {code.code} has been used up."
    if email and code.max_uses_per_email is not None and _active_uses(code, email) >= code.max_uses_per_email:
        return f"You have already used the code {code.code}."
    return ""


def discount_terms_for(*, code: str, email: str | None = None, now=None) -> dict:
    """The terms of a code a customer typed, or ``DiscountRefused`` saying why not."""
    typed = normalise(code)
    if not typed:
        raise DiscountRefused("Please enter a discount code.")
    found = DiscountCode.objects.filter(code=typed).first()
    refusal = _refusal(found, typed, email=email, now=now or timezone.now())
    if refusal:
        raise DiscountRefused(refusal)
    return _terms(found)


def discount_redeem(*, order, force: bool = False) -> bool:
    """Count the order's code as used (its card was just authorised). Idempotent.

    Returns False, counting nothing, if the code was used up (in total or by this email) since
    the order was priced: the last use went to someone else. ``force`` counts it regardless (the
    money was already captured, so the discount stands).
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
        if not force:
            if code.max_uses is not None and _active_uses(code) >= code.max_uses:
                return False
            if code.max_uses_per_email is not None and _active_uses(code, order.email) >= code.max_uses_per_email:
                return False
        if existing is not None:
            existing.released_at = None
            existing.save(update_fields=["released_at"])
        else:
            DiscountRedemption.objects.create(
                code=code, order_id=order.id, order_number=order.number, email=order.email, amount=order.discount.amount
            )
    return True


def discount_release(*, order) -> None:
    """Give the use back: the order was canceled or rejected. Idempotent."""
    if order.discount_code:
        DiscountRedemption.objects.filter(order_id=order.id, released_at__isnull=True).update(released_at=timezone.now())


def discount_codes_with_uses():
    """For the admin: each code with its counted uses."""
    return DiscountCode.objects.annotate(
        uses=Count("redemptions", filter=Q(redemptions__released_at__isnull=True))
    )
