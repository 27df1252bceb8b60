"""Helpers for the prescription tests: real file bytes, people, and prescription orders."""

from __future__ import annotations

import struct
import zlib
from datetime import date

from django.core.files.uploadedfile import SimpleUploadedFile

from checkout.placement import order_place
from orders import services
from orders.models import Order
from orders.state import OrderStatus, PaymentStatus
from prescriptions.files import check_prescription_upload
from prescriptions.intake import PrescriptionIntake, PrescriptionItem
from prescriptions.management.commands.setup_pharmacist_permissions import (
    grant_pharmacist_permissions,
)
from tests.factories import UserFactory
from tests.localstripe import CARD_OK, browser_confirm
from tests.orders.conftest import ADDRESS

MINIMAL_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)
ELF_HEADER = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00" + b"\x00" * 200
MZ_HEADER = (
    b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff"
    + b"\x00" * 50
    + b"PE\x00\x00"
    + b"\x00" * 200
)


def png_bytes(width: int = 2, height: int = 2) -> bytes:
    """A real PNG (valid chunks and CRCs), white pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    raw = b"".join(b"\x00" + b"\xff\xff\xff" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def upload(
    content: bytes, name: str = "prescription.pdf", content_type: str = "application/pdf"
) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type=content_type)


def make_pharmacist(**kwargs):
    """A member of the "pharmacist" group with the group's permissions (setup_pharmacist_permissions)."""
    user = UserFactory(is_staff=True, **kwargs)
    user.groups.add(grant_pharmacist_permissions())
    return user


def intake_for(
    tier, *, with_file: bool = True, file_name: str = "Jane Doe prescription.pdf"
) -> PrescriptionIntake:
    item = (
        PrescriptionItem(
            tier_id=tier.pk, upload=check_prescription_upload(upload(MINIMAL_PDF, file_name))
        )
        if with_file
        else PrescriptionItem(
            tier_id=tier.pk,
            prescriber_name="Dr. Ruth Okafor",
            prescriber_phone="518-555-0101",
            prescriber_licence="1234567890",
        )
    )
    return PrescriptionIntake(
        patient_name="Jane Doe",
        date_of_birth=date(1980, 5, 17),
        allergies="Penicillin (rash)",
        current_medicines="",
        items=(item,),
    )


def place_rx(
    cart, *, tier, user=None, with_file: bool = True, email: str = "jane@example.com"
) -> services.PlacedOrder:
    return order_place(
        cart=cart,
        email=email,
        address=ADDRESS,
        shipping_method="standard",
        user=user,
        prescription=intake_for(tier, with_file=with_file),
    )


def authorise(localstripe, placed) -> Order:
    """The customer pays: the card is authorised and the order waits for the pharmacist."""
    browser_confirm(
        base=localstripe.base, intent_id=placed.order.stripe_payment_intent_id, card_number=CARD_OK
    )
    order = services.order_sync_payment(order_id=placed.order.pk)
    assert (order.status, order.payment_status) == (
        OrderStatus.AWAITING_REVIEW,
        PaymentStatus.AUTHORIZED,
    )
    return order


def captured_minor(localstripe, intent_id: str) -> int:
    """What the PaymentIntent actually took from the card, in cents.

    Stripe reports ``amount_received``; localstripe does not, and books the released part of a
    partial capture as a refund on the charge, so there it is the charge's amount less that.
    """
    import stripe

    intent = localstripe.payment_intent(intent_id)
    if intent.get("amount_received") is not None:
        return int(intent["amount_received"])
    charge = intent.get("latest_charge")
    charge_id = charge if isinstance(charge, str) else charge["id"]
    charge = stripe.Charge.retrieve(charge_id).to_dict()
    return int(charge["amount"]) - int(charge.get("amount_refunded") or 0)


def approve_data(order, *, packs: dict | None = None, refills: int = 0, **extra) -> dict:
    """What the review page's one approval form posts: each prescription as written (kept on file),
    the packs to dispense (as ordered unless ``packs`` says otherwise), and a fresh form key."""
    import uuid

    from django.utils import timezone

    data = {"submission_key": str(uuid.uuid4())}
    for line in order.lines.all():
        data[f"line_{line.pk}"] = str((packs or {}).get(line.pk, line.packages))
        if line.requires_prescription and not hasattr_refill(line):
            p = f"rec_{line.pk}"
            data.update(
                {
                    f"{p}_directions": "1 tablet 3 times a day",
                    f"{p}_daily_dose": "3",
                    f"{p}_quantity_per_fill": str(line.pack_size),
                    f"{p}_refills_authorised": str(refills),
                    f"{p}_date_written": timezone.localdate().isoformat(),
                }
            )
    if "shown_capture" not in extra:
        # What the page's button names for these packs (the server's figure, as the page shows it).
        from prescriptions.decisions import approval_capture

        lines = list(order.lines.all())
        approved = {line.pk: int(data[f"line_{line.pk}"]) for line in lines}
        if any(approved.values()) and all(
            0 <= n <= line.packages for n, line in zip(approved.values(), lines)
        ):
            data["shown_capture"] = str(
                approval_capture(order=order, lines=lines, approved_packages=approved).amount
            )
    data.update(extra)
    return data


def hasattr_refill(line) -> bool:
    from prescriptions.models import OrderRefill

    return OrderRefill.objects.filter(line=line).exists()
