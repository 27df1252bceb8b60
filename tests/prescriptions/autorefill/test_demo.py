"""The demo: the demo patient can turn on auto-refill for the baclofen prescription, and the
amlodipine one's refill due today has been placed by auto-refill, held off-session, in the
pharmacist's refill queue. Run twice, the command changes nothing."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from djmoney.money import Money

from catalog.models import LegalClass
from orders.state import OrderStatus, PaymentStatus
from prescriptions.models import AutoRefillRun, AutoRefillStatus, PrescriptionOnFile
from tests.factories import DosageFactory, PackageTierFactory, ProductFactory
from tests.prescriptions.prescription_support import make_pharmacist

pytestmark = pytest.mark.django_db(transaction=True)


def test_demo_patient_has_auto_refill_and_the_pharmacist_sees_its_order(
    localstripe, baclofen, settings
):
    settings.DEBUG = True
    amlodipine = ProductFactory(
        name="Amlodipine", slug="amlodipine", legal_class=LegalClass.PRESCRIPTION
    )
    dosage = DosageFactory(
        product=amlodipine, strength="5mg", list_price_per_pill=Money("0.30", "USD")
    )
    PackageTierFactory(dosage=dosage, quantity=90, price=Money("21.00", "USD"), sku="AML-5-90")
    call_command("setup_demo_prescriptions")
    call_command("setup_demo_autorefill")
    call_command("setup_demo_autorefill")  # idempotent

    run = AutoRefillRun.objects.select_related("order", "autorefill").get()
    assert run.autorefill.status == AutoRefillStatus.ACTIVE
    assert (run.order.status, run.order.payment_status) == (
        OrderStatus.AWAITING_REVIEW,
        PaymentStatus.AUTHORIZED,
    )
    pharmacist = Client()
    pharmacist.force_login(make_pharmacist())
    queue = pharmacist.get(reverse("prescriptions:review_queue")).content.decode()
    card = queue[queue.index(f'id="refill-{run.order.number}"') :].split("</li>")[0]
    assert "Auto-refill" in card and "off-session" in card

    patient = Client()
    patient.force_login(run.autorefill.user)
    baclofen_record = PrescriptionOnFile.objects.get(medicine="Baclofen")
    detail = patient.get(reverse("refills:detail", args=[baclofen_record.pk])).content.decode()
    assert "Set up auto-refill" in detail
    manage = patient.get(reverse("autorefill:manage", args=[run.autorefill.prescription_id]))
    assert "Auto-refill is on" in manage.content.decode()
