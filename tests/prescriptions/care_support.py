"""Helpers for the transfer and renewal tests: a controlled medicine, a transfer request, the
pharmacist's answers, and a prescription on file that needs renewing."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from django.utils import timezone
from djmoney.money import Money

from catalog.models import Dosage, LegalClass
from prescriptions import transfers
from prescriptions.models import PrescriptionOnFile
from prescriptions.renewals import RenewInput
from tests.factories import DosageFactory, PackageTierFactory, ProductFactory
from tests.prescriptions.refills.support import approve_first_order


def controlled_dosage() -> Dosage:
    product = ProductFactory(
        name="Oxycodone", slug="oxycodone", legal_class=LegalClass.CONTROLLED, is_published=True
    )
    dosage = DosageFactory(product=product, strength="5mg", strength_value="5")
    PackageTierFactory(dosage=dosage, quantity=30, price=Money("20.00", "USD"), sku="OXY-5-30")
    return dosage


def transfer_input(dosage, **changes) -> transfers.TransferInput:
    values = {
        "patient_name": "Jane Doe",
        "patient_date_of_birth": date(1980, 5, 17),
        "pharmacy_name": "Corner Drug",
        "pharmacy_phone": "518-555-0199",
        "pharmacy_rx_number": "RX-4471",
        "dosage_id": dosage.pk,
        "prescriber_name": "Dr. Ruth Okafor",
        "prescriber_phone": "518-555-0101",
    }
    return transfers.TransferInput(**{**values, **changes})


def receive_input(**changes) -> transfers.ReceiveInput:
    today = timezone.localdate()
    values = {
        "directions": "1 tablet 3 times a day",
        "daily_dose": Decimal("3"),
        "quantity_per_fill": 90,
        "refills_left": 2,
        "date_written": today - timedelta(days=60),
        "expires_on": today + timedelta(days=300),
        "prescriber_name": "Dr. Ruth Okafor",
        "prescriber_licence": "1234567890",
        "prescriber_phone": "518-555-0101",
        "last_filled_on": today - timedelta(days=40),
        "last_fill_pills": 90,
    }
    return transfers.ReceiveInput(**{**values, **changes})


def renew_input(**changes) -> RenewInput:
    values = {
        "directions": "1 tablet 3 times a day",
        "daily_dose": Decimal("3"),
        "quantity_per_fill": 90,
        "refills_written": 3,
        "date_written": timezone.localdate(),
        "prescriber_name": "Dr. Ruth Okafor",
        "prescriber_licence": "1234567890",
        "prescriber_phone": "518-555-0101",
    }
    return RenewInput(**{**values, **changes})


def used_up_record(localstripe, tier, **kwargs) -> PrescriptionOnFile:
    """A first order kept on file with no refills, filled 40 days ago (a 30-day supply)."""
    _, _, record = approve_first_order(localstripe, tier, refills=0, **kwargs)
    PrescriptionOnFile.objects.filter(pk=record.pk).update(
        last_filled_on=timezone.localdate() - timedelta(days=40)
    )
    record.refresh_from_db()
    return record
