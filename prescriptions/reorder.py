"""Order again: a past order's general-sale and pharmacy-only packs back in the cart."""

from __future__ import annotations

from catalog.models import LegalClass
from orders.models import Order

from .models import PrescriptionOnFileEvent

Event = PrescriptionOnFileEvent.Kind

Event = PrescriptionOnFileEvent.Kind


# --- Order again -------------------------------------------------------------------------------


def order_again(*, order: Order, cart) -> tuple[list[str], list[str]]:
    """Put a past order's general-sale and pharmacy-only packs back in the cart.

    Prescription items are skipped (they need a prescription, or a refill from "My prescriptions").
    Returns (added, skipped) descriptions.
    """
    from cart.services import CartError, cart_add_tier

    added, skipped = [], []
    lines = order.lines.select_related("tier__dosage__product")
    for line in lines:
        label = f"{line.product_name} {line.strength}, {line.pack_size} pills"
        tier = line.tier
        if (
            tier is None
            or not tier.is_active
            or line.requires_prescription
            or tier.dosage.product.legal_class == LegalClass.PRESCRIPTION
        ):
            skipped.append(label)
            continue
        try:
            cart_add_tier(cart=cart, tier_id=tier.pk, packages=line.packages)
        except CartError:
            skipped.append(label)
        else:
            added.append(label)
    return added, skipped
