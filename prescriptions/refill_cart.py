"""A refill in the cart and in the order placed from it (issue #16).

A refill line is checked against its prescription on file when it is added to the cart and again,
on locked rows, when the order is placed (``refills_verify_for_order``, in ``order_place``'s
transaction through ``prescriptions.checkout_step``): a refill that became too soon or used up
meanwhile is refused, never clamped.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from catalog.models import PackageTier
from orders.models import Order, OrderLine

from .models import (
    CartRefill,
    OrderRefill,
    PatientDetails,
    PrescriptionOnFile,
    PrescriptionOnFileEvent,
)
from .on_file import active_records_for_patient, own_record
from .refill_rules import RefillError, refill_checks, refills_for_pack

Event = PrescriptionOnFileEvent.Kind

Event = PrescriptionOnFileEvent.Kind


def refill_add_to_cart(*, cart, user, record_id, tier_id) -> CartRefill:
    """Put one pack of the prescribed strength in the cart, linked to the prescription on file."""
    from cart.models import CartLine
    from cart.services import CartError, cart_add_tier

    record = own_record(user=user, record_id=record_id)
    checks = refill_checks(record)
    if checks.expired:
        raise RefillError(
            f"This prescription expired on {record.expires_on:%B %-d, %Y}; a refill needs a new prescription."
        )
    try:
        tier = PackageTier.objects.active().get(pk=int(tier_id), dosage_id=record.dosage_id)
    except (PackageTier.DoesNotExist, TypeError, ValueError):
        raise RefillError("Please choose a pack of the prescribed strength.") from None
    needed = refills_for_pack(record=record, pills=tier.quantity)
    if needed > record.refills_left:
        raise RefillError(
            f"A pack of {tier.quantity} would use {needed} refills; {record.refills_left} left. Please choose a smaller pack."
        )
    if checks.too_soon:
        raise RefillError(
            f"{checks.too_soon_text}, when about 75% of your last fill is used. Nothing was added to your cart."
        )
    with transaction.atomic():
        if CartRefill.objects.filter(cart_line__cart=cart, prescription=record).exists():
            raise RefillError("A refill of this prescription is already in your cart.")
        if CartLine.objects.filter(cart=cart, tier=tier).exists():
            raise RefillError(
                "This pack is already in your cart. Remove it first, then ask for the refill."
            )
        try:
            change = cart_add_tier(cart=cart, tier_id=tier.pk, packages=1)
        except CartError as exc:
            raise RefillError(str(getattr(exc, "message", exc))) from exc
        return CartRefill.objects.create(cart_line=change.line, prescription=record)


def cart_refills(cart) -> dict[int, PrescriptionOnFile]:
    """Refill lines of a cart by package tier (for the checkout's prescription step)."""
    if cart is None or cart.pk is None:
        return {}
    rows = CartRefill.objects.filter(cart_line__cart=cart).select_related(
        "cart_line", "prescription"
    )
    return {row.cart_line.tier_id: row.prescription for row in rows}


def cart_refills_of_lines(lines) -> dict[int, PrescriptionOnFile]:
    """``cart_refills`` from cart lines read with ``select_related("refill__prescription")``
    (the checkout page's lines), without another query."""
    refills = {}
    for line in lines:
        refill = getattr(
            line, "refill", None
        )  # no refill link: the reverse accessor raises DoesNotExist
        if refill is not None:
            refills[line.tier_id] = refill.prescription
    return refills


def refills_verify_for_order(
    *, order: Order, cart, user, add_patient: bool = True
) -> list[OrderRefill]:
    """Link the new order's refill lines to their prescriptions, verified server-side.

    Called inside ``order_place``'s transaction: the prescription belongs to the customer placing
    the order, is not expired, has the refills the pack uses, and is for the strength in the cart;
    the line is one pack. Anything else refuses the checkout. A refill-only order gets the
    patient from the record, so the pharmacist's pages read as for any prescription order.
    """
    links = list(
        CartRefill.objects.filter(cart_line__cart=cart).select_related(
            "cart_line__tier", "prescription"
        )
    )
    if not links:
        return []
    lines = {
        line.tier_id: line
        for line in OrderLine.objects.filter(order=order, requires_prescription=True)
    }
    created = []
    today = timezone.localdate()
    for link in links:
        record = PrescriptionOnFile.objects.select_for_update().get(pk=link.prescription_id)
        cart_line = link.cart_line
        line = lines.get(cart_line.tier_id)
        if line is None:
            continue
        owner = user if user is not None and getattr(user, "is_authenticated", False) else None
        if owner is None or record.user_id != owner.pk:
            raise RefillError(
                "A refill in your cart is not for a prescription on your account. Please remove it."
            )
        if cart_line.tier.dosage_id != record.dosage_id:
            raise RefillError(
                f"{line.product_name} {line.strength}: not the prescribed strength. Please remove the refill."
            )
        if line.packages != 1:
            raise RefillError(
                f"{line.product_name}: a refill is one pack. Please set the quantity to 1."
            )
        needed = refills_for_pack(record=record, pills=line.pack_size)
        if today > record.expires_on:
            raise RefillError(
                f"Your prescription for {record.medicine} expired on {record.expires_on:%B %-d, %Y}; please send a new one."
            )
        if needed > record.refills_left:
            raise RefillError(
                f"{record.medicine}: not enough refills left for this pack ({record.refills_left} left)."
            )
        checks = refill_checks(record, today=today, refills_needed=needed)
        if checks.too_soon:
            raise RefillError(
                f"{record.medicine}: {checks.too_soon_text[0].lower()}{checks.too_soon_text[1:]}, when about 75% of "
                "your last fill is used; nothing was charged."
            )
        created.append(
            OrderRefill.objects.create(
                order=order,
                line=line,
                prescription=record,
                pills=line.pack_size,
                refills_needed=needed,
            )
        )
    if created and add_patient:
        record = created[0].prescription
        PatientDetails.objects.create(
            order=order,
            name=record.patient_name,
            date_of_birth=record.patient_date_of_birth,
            current_medicines=_other_medicines_text(record),
        )
    return created


def refill_line_ids(order: Order) -> frozenset[int]:
    """The order's lines filled from a prescription on file (one query)."""
    return frozenset(OrderRefill.objects.filter(order=order).values_list("line_id", flat=True))


def _other_medicines_text(record: PrescriptionOnFile) -> str:
    others = active_records_for_patient(record).exclude(pk=record.pk)
    return "; ".join(f"{o.medicine} {o.strength} (on file)" for o in others)
