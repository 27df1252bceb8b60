"""The shop the backup drill backs up, run in a subprocess against its own throwaway database.

``python -m tests.ops.backup_drill_shop populate`` builds a small pharmacy through the shop's own
services (against localstripe): one prescription order approved and kept on file, one waiting for
review, each with an uploaded prescription file of its own bytes, a price change and their emails.
It prints the SHA-256 of every file it uploaded. ``inventory`` prints, as JSON, everything the
drill must find again after a restore: orders, prescriptions, records on file, audit rows and the
bytes of every file on disk.
"""

from __future__ import annotations

import hashlib
import json
import sys
import uuid
from datetime import date
from decimal import Decimal
from pathlib import Path

import django

django.setup()

from django.conf import settings
from django.utils import timezone
from djmoney.money import Money

from cart.models import Cart, CartLine
from catalog.models import LegalClass, PackageTier
from checkout.placement import order_place
from notifications.models import OutboundEmail
from orders.models import Order, OrderEvent, OrderLine
from prescriptions import on_file_record
from prescriptions.files import check_prescription_upload
from prescriptions.intake import PrescriptionIntake, PrescriptionItem
from prescriptions.models import (
    Prescription,
    PrescriptionOnFile,
    PrescriptionOnFileEvent,
    PrescriptionReview,
)
from tests.factories import DosageFactory, PackageTierFactory, ProductFactory, UserFactory
from tests.localstripe import LocalStripe
from tests.orders.conftest import ADDRESS
from tests.prescriptions.prescription_support import (
    MINIMAL_PDF,
    authorise,
    make_pharmacist,
    png_bytes,
    upload,
)


def _place(tier, user, content: bytes, name: str, content_type: str) -> Order:
    cart = Cart.objects.get_or_create(user=user)[0]
    CartLine.objects.create(cart=cart, tier=tier, packages=1, price_when_added=tier.price)
    intake = PrescriptionIntake(
        patient_name=user.get_full_name() or "Jane Doe",
        date_of_birth=date(1980, 5, 17),
        allergies="Penicillin (rash)",
        items=(
            PrescriptionItem(
                tier_id=tier.pk,
                upload=check_prescription_upload(upload(content, name, content_type)),
            ),
        ),
    )
    placed = order_place(
        cart=cart,
        email=user.email,
        address=ADDRESS,
        shipping_method="standard",
        user=user,
        prescription=intake,
    )
    return authorise(LocalStripe(base=settings.STRIPE_API_BASE, process=None), placed)


def populate() -> dict:
    product = ProductFactory(name="Baclofen", slug="baclofen", legal_class=LegalClass.PRESCRIPTION)
    dosage = DosageFactory(product=product, strength="10mg", strength_value="10")
    tier = PackageTierFactory(
        dosage=dosage, quantity=90, price=Money("54.00", "USD"), sku="BAC-10-90"
    )
    tier.price = Money("52.50", "USD")  # a price change: a history row
    tier.save()
    pharmacist = make_pharmacist()
    first, second = UserFactory(), UserFactory()
    pdf = MINIMAL_PDF + b"%" + uuid.uuid4().hex.encode() + b"\n"
    png = png_bytes(7, 5)
    approved = _place(tier, first, pdf, "Jane prescription.pdf", "application/pdf")
    line = OrderLine.objects.get(order=approved)
    on_file_record.prescription_approve_and_record(
        order=approved,
        by=pharmacist,
        records=[
            on_file_record.RecordInput(
                line_id=line.pk,
                directions="1 tablet 3 times a day",
                daily_dose=Decimal("3"),
                quantity_per_fill=line.pack_size,
                refills_authorised=3,
                date_written=timezone.localdate(),
            )
        ],
        submission_key=uuid.uuid4(),
    )
    _place(PackageTier.objects.get(pk=tier.pk), second, png, "scan.png", "image/png")
    return {"uploaded": sorted(hashlib.sha256(content).hexdigest() for content in (pdf, png))}


def _files(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _rows(queryset, *fields) -> list:
    return [
        [str(value) for value in row] for row in queryset.order_by("pk").values_list("pk", *fields)
    ]


def inventory() -> dict:
    history = PackageTier.history.model
    return {
        "orders": _rows(
            Order.objects, "number", "status", "payment_status", "total", "amount_captured", "email"
        ),
        "prescriptions": _rows(
            Prescription.objects, "order__number", "description", "file", "size"
        ),
        "prescription_files": sorted(
            [p.file.name, hashlib.sha256(p.file.open("rb").read()).hexdigest()]
            for p in Prescription.objects.exclude(file="")
        ),
        "records_on_file": _rows(
            PrescriptionOnFile.objects,
            "medicine",
            "refills_authorised",
            "refills_used",
            "source_order__number",
        ),
        "order_events": _rows(
            OrderEvent.objects, "order__number", "kind", "from_status", "to_status", "created_at"
        ),
        "reviews": _rows(
            PrescriptionReview.objects, "order__number", "action", "by__email", "created_at"
        ),
        "record_events": _rows(
            PrescriptionOnFileEvent.objects,
            "prescription_id",
            "kind",
            "order__number",
            "created_at",
        ),
        "price_history": _rows(history.objects, "id", "price", "history_type", "history_date"),
        "emails": _rows(OutboundEmail.objects, "kind", "recipient", "status"),
        "private_files": _files(Path(settings.PRIVATE_MEDIA_ROOT)),
    }


if __name__ == "__main__":
    action = sys.argv[1]
    print(json.dumps(populate() if action == "populate" else inventory()))
