"""The demo patient's transfer request (issue 25), for ``setup_demo_prescriptions``.

Made through the service like a real request (its event says who asked), once: a second run
finds the patient's request and leaves it as it is, whatever the pharmacist did with it since.
"""

from __future__ import annotations

from datetime import date

from .models import TransferRequest
from .transfers import TransferInput, transfer_request_create, transferable_dosages


def demo_transfer_request(user) -> TransferRequest | None:
    """Lisinopril held at another pharmacy, waiting in the transfer queue (None without a catalog)."""
    existing = TransferRequest.objects.filter(user=user).order_by("pk").first()
    if existing is not None:
        return existing
    dosages = transferable_dosages()
    dosage = dosages.filter(product__slug="lisinopril").first() or dosages.first()
    if dosage is None:
        return None
    return transfer_request_create(
        user=user,
        data=TransferInput(
            patient_name="Jane Doe",
            patient_date_of_birth=date(1980, 5, 17),
            pharmacy_name="Hudson Valley Drugs",
            pharmacy_phone="518-555-0142",
            pharmacy_rx_number="HV-220931",
            dosage_id=dosage.pk,
            prescriber_name="Dr. Ruth Okafor",
            prescriber_phone="518-555-0101",
        ),
    )
