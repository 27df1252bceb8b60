"""Transfer in: the patient's request, the pharmacist's steps (each audited, permission-checked,
on the locked row), what is kept on file, and the pages (own requests only, never cached)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from cart.models import Cart
from prescriptions import refill_cart as records
from prescriptions import transfers
from prescriptions.care_states import TransferStatus
from prescriptions.care_steps import CareError
from prescriptions.models import TransferRequest
from tests.factories import UserFactory
from tests.prescriptions.care_support import controlled_dosage, receive_input, transfer_input
from tests.prescriptions.prescription_support import make_pharmacist

pytestmark = pytest.mark.django_db


@pytest.fixture
def dosage(baclofen_90):
    return baclofen_90.dosage


def test_request_contacted_received_is_on_file_with_its_fills_and_orderable(dosage, baclofen_90):
    patient, pharmacist = UserFactory(), make_pharmacist()
    transfer = transfers.transfer_request_create(user=patient, data=transfer_input(dosage))
    assert (transfer.status, transfer.medicine, transfer.strength) == (
        "requested",
        "Baclofen",
        "10mg",
    )
    transfers.transfer_mark_contacted(transfer=transfer, by=pharmacist, note="Called Corner Drug.")
    transfer = transfers.transfer_receive(transfer=transfer, by=pharmacist, data=receive_input())
    record = transfer.prescription
    assert transfer.status == TransferStatus.RECEIVED
    assert (record.user, record.refills_left, record.dosage_id) == (patient, 2, dosage.pk)
    assert (record.prescriber_licence, record.recorded_by) == ("1234567890", pharmacist)
    assert "Transferred in from Corner Drug" in record.events.get(kind="recorded").note
    # Who and when, each step.
    steps = list(transfer.events.values_list("from_status", "to_status", "by"))
    assert steps == [
        ("", "requested", patient.pk),
        ("requested", "contacted", pharmacist.pk),
        ("contacted", "received", pharmacist.pk),
    ]
    # The patient can put it in the cart like any refill (the last fill was 40 days ago).
    cart = Cart.objects.create(user=patient)
    records.refill_add_to_cart(cart=cart, user=patient, record_id=record.pk, tier_id=baclofen_90.pk)
    assert cart.lines.get().tier_id == baclofen_90.pk


def test_a_controlled_substance_is_refused_with_its_reason(db):
    with pytest.raises(CareError) as refused:
        transfers.transfer_request_create(
            user=UserFactory(), data=transfer_input(controlled_dosage())
        )
    assert "controlled substance" in refused.value.message and refused.value.field == "dosage"
    assert not TransferRequest.objects.exists()


def test_a_medicine_without_prescription_is_refused(general_tier):
    with pytest.raises(CareError, match="needs no prescription"):
        transfers.transfer_request_create(
            user=UserFactory(), data=transfer_input(general_tier.dosage)
        )


def test_asking_twice_makes_one_request(dosage):
    patient = UserFactory()
    first = transfers.transfer_request_create(user=patient, data=transfer_input(dosage))
    again = transfers.transfer_request_create(user=patient, data=transfer_input(dosage))
    assert first.pk == again.pk and TransferRequest.objects.count() == 1


def test_refused_needs_a_reason_and_is_final(dosage):
    pharmacist = make_pharmacist()
    transfer = transfers.transfer_request_create(user=UserFactory(), data=transfer_input(dosage))
    with pytest.raises(CareError, match="reason"):
        transfers.transfer_refuse(transfer=transfer, by=pharmacist, reason="  ")
    transfers.transfer_refuse(transfer=transfer, by=pharmacist, reason="No refills left there.")
    transfer.refresh_from_db()
    assert (transfer.status, transfer.reason) == ("refused", "No refills left there.")
    with pytest.raises(CareError) as late:
        transfers.transfer_mark_contacted(transfer=transfer, by=pharmacist)
    assert late.value.status == 409 and "Refused" in late.value.message


def test_steps_out_of_order_and_without_permission_change_nothing(dosage):
    patient, pharmacist = UserFactory(), make_pharmacist()
    transfer = transfers.transfer_request_create(user=patient, data=transfer_input(dosage))
    with pytest.raises(CareError) as skipped:
        transfers.transfer_receive(transfer=transfer, by=pharmacist, data=receive_input())
    assert skipped.value.status == 409
    for who in (patient, UserFactory(is_staff=True), None):
        with pytest.raises(PermissionDenied):
            transfers.transfer_mark_contacted(transfer=transfer, by=who)
    transfer.refresh_from_db()
    assert transfer.status == "requested" and transfer.events.count() == 1


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"refills_left": 0}, "No fill is left"),
        ({"expires_on": "yesterday"}, "expired"),
        ({"expires_on": "a year and a day"}, "at most 365 days"),
        ({"last_filled_on": None}, "both the last fill"),
        ({"prescriber_licence": ""}, "licence or NPI"),
        ({"daily_dose": 0}, "above zero"),
    ],
)
def test_receive_refuses_what_cannot_be_kept_on_file(dosage, changes, reason):
    pharmacist = make_pharmacist()
    today = timezone.localdate()
    written = today - timedelta(days=60)
    dates = {
        "yesterday": today - timedelta(days=1),
        "a year and a day": written + timedelta(days=366),
    }
    changes = {key: dates.get(value, value) for key, value in changes.items()}
    transfer = transfers.transfer_request_create(user=UserFactory(), data=transfer_input(dosage))
    transfers.transfer_mark_contacted(transfer=transfer, by=pharmacist)
    with pytest.raises(CareError, match=reason):
        transfers.transfer_receive(
            transfer=transfer, by=pharmacist, data=receive_input(date_written=written, **changes)
        )
    transfer.refresh_from_db()
    assert transfer.status == "contacted" and transfer.prescription is None


def test_receive_accepts_the_exact_limits(dosage):
    """A fill left of 1 and an expiry exactly 365 days after the date written are accepted."""
    pharmacist = make_pharmacist()
    written = timezone.localdate() - timedelta(days=60)
    transfer = transfers.transfer_request_create(user=UserFactory(), data=transfer_input(dosage))
    transfers.transfer_mark_contacted(transfer=transfer, by=pharmacist)
    transfer = transfers.transfer_receive(
        transfer=transfer,
        by=pharmacist,
        data=receive_input(
            refills_left=1, date_written=written, expires_on=written + timedelta(days=365)
        ),
    )
    assert transfer.prescription.refills_left == 1


def test_the_database_refuses_a_received_transfer_without_a_record(dosage):
    transfer = transfers.transfer_request_create(user=UserFactory(), data=transfer_input(dosage))
    with pytest.raises(IntegrityError), transaction.atomic():
        TransferRequest.objects.filter(pk=transfer.pk).update(status="received")
    with pytest.raises(IntegrityError), transaction.atomic():
        TransferRequest.objects.filter(pk=transfer.pk).update(status="refused", reason="")


def test_history_rows_cannot_be_changed(dosage):
    transfer = transfers.transfer_request_create(user=UserFactory(), data=transfer_input(dosage))
    event = transfer.events.get()
    event.note = "rewritten"
    with pytest.raises(ValueError):
        event.save()
    with pytest.raises(ValueError):
        event.delete()


# --- Pages ---------------------------------------------------------------------------------------


def _form(chosen, **changes) -> dict:
    data = {
        "patient_name": "Jane Doe",
        "patient_date_of_birth": "1980-05-17",
        "dosage": chosen.pk,
        "pharmacy_name": "Corner Drug",
        "pharmacy_phone": "518-555-0199",
        "pharmacy_rx_number": "",
        "prescriber_name": "Dr. Ruth Okafor",
        "prescriber_phone": "",
    }
    return {**data, **changes}


def test_patient_pages_are_private_and_not_cached(client, dosage):
    patient = UserFactory()
    response = client.get(reverse("transfers:new"))
    assert response.status_code == 302 and "login" in response["Location"]
    client.force_login(patient)
    form = client.get(reverse("transfers:new"))
    assert "Baclofen 10mg" in form.content.decode() and "no-store" in form["Cache-Control"]
    response = client.post(reverse("transfers:new"), _form(dosage))
    transfer = TransferRequest.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "transfers:detail", args=[transfer.pk]
    )
    page = client.get(reverse("transfers:detail", args=[transfer.pk]))
    assert "Requested" in page.content.decode() and "no-store" in page["Cache-Control"]
    assert "Corner Drug" in client.get(reverse("accounts:dashboard")).content.decode()
    client.force_login(UserFactory())
    assert client.get(reverse("transfers:detail", args=[transfer.pk])).status_code == 404
    assert "Corner Drug" not in client.get(reverse("transfers:list")).content.decode()


def test_bad_input_is_a_400_with_its_reason(client, dosage):
    client.force_login(UserFactory())
    controlled = controlled_dosage()
    assert "Oxycodone" not in client.get(reverse("transfers:new")).content.decode()
    response = client.post(reverse("transfers:new"), _form(controlled))
    assert response.status_code == 400 and "controlled substance" in response.content.decode()
    response = client.post(reverse("transfers:new"), _form(dosage, dosage="x", pharmacy_phone=""))
    assert response.status_code == 400 and "This field is required" in response.content.decode()
    response = client.post(
        reverse("transfers:new"), _form(dosage, patient_date_of_birth="2999-01-01")
    )
    assert response.status_code == 400 and "future" in response.content.decode()
    assert not TransferRequest.objects.exists()


def test_the_queue_is_for_pharmacists_and_each_action_checks_again(client, dosage):
    transfer = transfers.transfer_request_create(user=UserFactory(), data=transfer_input(dosage))
    client.force_login(UserFactory())
    assert client.get(reverse("transfers:queue")).status_code == 403
    assert client.post(reverse("transfers:contacted", args=[transfer.pk])).status_code == 403
    client.force_login(make_pharmacist())
    queue = client.get(reverse("transfers:queue"))
    assert f"Handle transfer {transfer.pk}" in queue.content.decode()
    assert "no-store" in queue["Cache-Control"]
    response = client.post(reverse("transfers:refuse", args=[transfer.pk]), {"reason": ""})
    assert response.status_code == 400
    response = client.post(reverse("transfers:receive", args=[transfer.pk]), {"directions": "x"})
    assert response.status_code == 400
    response = client.post(reverse("transfers:contacted", args=[transfer.pk]), {"note": ""})
    assert response.status_code == 302
    response = client.post(reverse("transfers:contacted", args=[transfer.pk]), {"note": ""})
    assert response.status_code == 409 and "already" in response.content.decode()
    assert client.get(reverse("transfers:review", args=[999999])).status_code == 404


def test_the_queue_costs_the_same_queries_for_one_request_or_many(
    client, dosage, django_assert_max_num_queries
):
    transfers.transfer_request_create(user=UserFactory(), data=transfer_input(dosage))
    client.force_login(make_pharmacist())
    client.get(reverse("transfers:queue"))
    with django_assert_max_num_queries(12) as first:
        client.get(reverse("transfers:queue"))
    for _ in range(4):
        transfers.transfer_request_create(user=UserFactory(), data=transfer_input(dosage))
    with django_assert_max_num_queries(len(first.captured_queries)):
        page = client.get(reverse("transfers:queue")).content.decode()
    assert page.count("Handle transfer") == 5
