"""The demo: the demo patient has a transfer request waiting, and the pharmacist sees it in the
transfer queue (linked from the review queue); running the setup again changes nothing."""

import pytest
from django.core.management import call_command
from django.urls import reverse

from prescriptions import transfers
from prescriptions.models import TransferRequest
from tests.prescriptions.prescription_support import make_pharmacist

pytestmark = pytest.mark.django_db


def test_demo_patient_has_a_transfer_waiting_in_the_queue(client, baclofen, settings):
    settings.DEBUG = True
    call_command("setup_demo_prescriptions")
    transfer = TransferRequest.objects.get()
    assert (transfer.user.email, transfer.status) == ("patient@pharmacy.example", "requested")
    assert transfer.pharmacy_name == "Hudson Valley Drugs"
    pharmacist = make_pharmacist()
    transfers.transfer_mark_contacted(transfer=transfer, by=pharmacist)
    call_command("setup_demo_prescriptions")  # idempotent: the request is left as it is
    transfer = TransferRequest.objects.get()
    assert transfer.status == "contacted" and transfer.events.count() == 2
    client.force_login(pharmacist)
    review_queue = client.get(reverse("prescriptions:review_queue")).content.decode()
    assert reverse("transfers:queue") in review_queue and reverse("renewals:queue") in review_queue
    queue = client.get(reverse("transfers:queue")).content.decode()
    assert f"Handle transfer {transfer.pk}" in queue and "Hudson Valley Drugs" in queue
    client.force_login(transfer.user)
    assert "Hudson Valley Drugs" in client.get(reverse("accounts:dashboard")).content.decode()
