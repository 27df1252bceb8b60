"""What the customer gives at checkout for a prescription order: the patient, and for each
prescription item an uploaded copy or the prescriber's details, written with the order in
``order_place``'s transaction (through ``prescriptions.checkout_step``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import partial

from django.core.files.base import ContentFile
from django.db import transaction

from orders.models import Order, OrderLine
from orders.services import OrderError

from .files import CheckedUpload, private_storage
from .models import PatientDetails, Prescription

# --- Checkout: what the customer gave -------------------------------------------------------


@dataclass(frozen=True)
class PrescriptionItem:
    """For one prescription item in the cart (by package tier): a copy, the prescriber, or both."""

    tier_id: int
    upload: CheckedUpload | None = None
    prescriber_name: str = ""
    prescriber_phone: str = ""
    prescriber_licence: str = ""


@dataclass(frozen=True)
class PrescriptionIntake:
    patient_name: str
    date_of_birth: date
    allergies: str = ""
    current_medicines: str = ""
    items: tuple[PrescriptionItem, ...] = field(default_factory=tuple)


def age_on(*, born: date, today: date) -> int:
    """Whole years, as a birthday counts them (born 29 Feb: a year older on 1 March)."""
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def prescriptions_record(*, order: Order, intake: PrescriptionIntake) -> list[Prescription]:
    """Attach the patient and the prescriptions to a new order, inside ``order_place``'s transaction.

    Uploaded files are written only once that transaction commits: a checkout refused after this
    point (stock ran out, a price changed) rolls back and leaves no file behind.
    """
    PatientDetails.objects.create(
        order=order,
        name=intake.patient_name.strip(),
        date_of_birth=intake.date_of_birth,
        allergies=intake.allergies.strip(),
        current_medicines=intake.current_medicines.strip(),
    )
    # Lines filled from a prescription on file (issue #16, linked just before) need no new prescription.
    lines = {
        line.tier_id: line
        for line in OrderLine.objects.filter(
            order=order, requires_prescription=True, refill__isnull=True
        )
    }
    items = {item.tier_id: item for item in intake.items}
    missing = [line for tier_id, line in lines.items() if tier_id not in items]
    if missing:
        raise OrderError(
            f"Please upload a prescription or give the prescriber's details for {missing[0]}."
        )
    created = []
    for tier_id, line in lines.items():
        item = items[tier_id]
        name = item.upload.new_name() if item.upload else ""
        prescription = Prescription.objects.create(
            order=order,
            line=line,
            description=f"{line.product_name} {line.strength}, {line.pack_size} pills",
            file=name,
            content_type=item.upload.content_type if item.upload else "",
            size=item.upload.size if item.upload else None,
            prescriber_name=item.prescriber_name.strip(),
            prescriber_phone=item.prescriber_phone.strip(),
            prescriber_licence=item.prescriber_licence.strip(),
        )
        if item.upload:
            # Read now (at most PRESCRIPTION_MAX_UPLOAD_BYTES): the upload may be closed by commit time.
            item.upload.file.seek(0)
            content = ContentFile(item.upload.file.read())
            transaction.on_commit(partial(_write_upload, prescription.pk, name, content))
        created.append(prescription)
    return created


def _write_upload(prescription_id, name: str, upload) -> None:
    storage = private_storage()
    saved = storage.save(name, upload)
    if saved != name:  # never expected with random names; keep the record pointing at the file
        Prescription.objects.filter(pk=prescription_id).update(file=saved)
