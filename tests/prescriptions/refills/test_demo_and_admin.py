"""The demo customer with a prescription on file, and corrections to a record kept in its history."""

from decimal import Decimal

import pytest
from django.core.management import call_command
from django.urls import reverse

from prescriptions import on_file_record, refill_rules, reminders
from prescriptions.models import PrescriptionOnFile
from tests.prescriptions.prescription_support import make_pharmacist
from tests.prescriptions.refills.support import approve_first_order

pytestmark = pytest.mark.django_db


def test_demo_customer_has_a_prescription_on_file_ready_to_refill(client, baclofen, settings):
    settings.DEBUG = True
    call_command("setup_demo_prescriptions")
    call_command("setup_demo_prescriptions")  # idempotent
    record = PrescriptionOnFile.objects.get()
    assert (record.user.email, record.refills_left, record.medicine) == (
        "patient@pharmacy.example",
        3,
        "Baclofen",
    )
    assert not refill_rules.refill_checks(record).too_soon
    assert reminders.refill_reminders_send() == 1  # the supply runs out within the week
    # The README walkthrough signs in with the printed password: the address must be verified.
    response = client.post(
        reverse("accounts:login"),
        {"login": "patient@pharmacy.example", "password": "demo-pharmacy-patient-2024"},
    )
    assert response.status_code == 302, response.content.decode()[:300]
    assert "3 of 3" in client.get(reverse("refills:list")).content.decode()


def test_a_change_to_the_record_keeps_before_and_after(localstripe, baclofen_90):
    _, _, record = approve_first_order(localstripe, baclofen_90, refills=3)
    pharmacist = make_pharmacist()
    on_file_record.prescription_on_file_change(
        record=record, by=pharmacist, note="Dose reduced by prescriber.", daily_dose=Decimal("2")
    )
    change = record.events.get(kind="changed")
    assert (change.changes["before"]["daily_dose"], change.changes["after"]["daily_dose"]) == (
        "3.00",
        "2",
    )
    with pytest.raises(refill_rules.RefillError):
        on_file_record.prescription_on_file_change(
            record=record, by=pharmacist, note="Typo.", daily_dose=Decimal("0")
        )
    record.refresh_from_db()
    assert record.daily_dose == Decimal("2")
