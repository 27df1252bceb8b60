"""Renewal requests: one open request per prescription (service and database), the
pharmacist's steps, the renewed prescription as a new record on file, and the pages."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, close_old_connections, transaction
from django.urls import reverse
from django.utils import timezone

from cart.models import Cart
from prescriptions import refill_cart as records
from prescriptions import renewals
from prescriptions.care_steps import CareError
from prescriptions.models import PrescriptionOnFile, RenewalRequest
from tests.factories import UserFactory
from tests.prescriptions.care_support import renew_input, used_up_record
from tests.prescriptions.prescription_support import make_pharmacist
from tests.prescriptions.refills.support import approve_first_order

pytestmark = pytest.mark.django_db


def _sent(record, pharmacist):
    renewal = renewals.renewal_request_start(prescription=record, by=record.user)
    return renewals.renewal_mark_sent(renewal=renewal, by=pharmacist)


def test_one_click_twice_is_one_request_and_the_database_refuses_a_second(localstripe, baclofen_90):
    record = used_up_record(localstripe, baclofen_90)
    first = renewals.renewal_request_start(prescription=record, by=record.user)
    again = renewals.renewal_request_start(prescription=record, by=None)  # auto-refill
    assert first.pk == again.pk and first.status == "requested"
    with pytest.raises(IntegrityError), transaction.atomic():
        RenewalRequest.objects.create(prescription=record)
    assert list(first.events.values_list("to_status", "by")) == [("requested", record.user.pk)]


def test_no_renewal_while_refills_are_left_and_the_expired_one_may_ask(localstripe, baclofen_90):
    _, _, record = approve_first_order(localstripe, baclofen_90, refills=1)
    with pytest.raises(CareError, match="still has refills") as refused:
        renewals.renewal_request_start(prescription=record, by=record.user)
    assert refused.value.status == 409
    today = timezone.localdate()
    PrescriptionOnFile.objects.filter(pk=record.pk).update(
        date_written=today - timedelta(days=400), expires_on=today - timedelta(days=1)
    )
    record.refresh_from_db()
    assert renewals.renewal_request_start(prescription=record, by=record.user).status == "requested"


def test_only_the_patient_staff_or_the_shop_may_ask(localstripe, baclofen_90):
    record = used_up_record(localstripe, baclofen_90)
    with pytest.raises(PermissionDenied):
        renewals.renewal_request_start(prescription=record, by=UserFactory())
    assert renewals.renewal_request_start(prescription=record, by=make_pharmacist()).pk


def test_renewed_becomes_a_new_record_linked_to_the_old_and_orderable(localstripe, baclofen_90):
    pharmacist = make_pharmacist()
    record = used_up_record(localstripe, baclofen_90, pharmacist=pharmacist)
    renewal = _sent(record, pharmacist)
    renewal = renewals.renewal_renew(renewal=renewal, by=pharmacist, data=renew_input())
    new = renewal.renewed_prescription
    assert renewal.status == "renewed" and new.pk != record.pk and new.renewal_of == renewal
    # 3 refills written and the first fill: 4 fills; the old last fill carried over.
    assert (new.refills_authorised, new.refills_left, new.user) == (4, 4, record.user)
    assert (new.last_filled_on, new.last_fill_pills) == (record.last_filled_on, 90)
    record.refresh_from_db()
    assert record.refills_left == 0  # the old record is left as it was
    cart = Cart.objects.get_or_create(user=record.user)[0]
    records.refill_add_to_cart(
        cart=cart, user=record.user, record_id=new.pk, tier_id=baclofen_90.pk
    )
    with pytest.raises(CareError, match="renewed already"):
        renewals.renewal_request_start(prescription=record, by=record.user)
    assert [e.to_status for e in renewal.events.all()] == ["requested", "sent", "renewed"]


def test_denied_needs_a_reason_and_the_patient_may_ask_again(localstripe, baclofen_90):
    pharmacist = make_pharmacist()
    record = used_up_record(localstripe, baclofen_90, pharmacist=pharmacist)
    renewal = _sent(record, pharmacist)
    with pytest.raises(CareError, match="reason"):
        renewals.renewal_deny(renewal=renewal, by=pharmacist, reason="")
    renewals.renewal_deny(renewal=renewal, by=pharmacist, reason="Needs a check-up first.")
    renewal.refresh_from_db()
    assert (renewal.status, renewal.reason) == ("denied", "Needs a check-up first.")
    with pytest.raises(CareError) as late:
        renewals.renewal_renew(renewal=renewal, by=pharmacist, data=renew_input())
    assert late.value.status == 409
    assert renewals.renewal_request_start(prescription=record, by=record.user).pk != renewal.pk


def test_steps_out_of_order_or_without_permission_change_nothing(localstripe, baclofen_90):
    pharmacist = make_pharmacist()
    record = used_up_record(localstripe, baclofen_90, pharmacist=pharmacist)
    renewal = renewals.renewal_request_start(prescription=record, by=record.user)
    with pytest.raises(CareError) as early:
        renewals.renewal_renew(renewal=renewal, by=pharmacist, data=renew_input())
    assert early.value.status == 409
    for who in (record.user, None):
        with pytest.raises(PermissionDenied):
            renewals.renewal_mark_sent(renewal=renewal, by=who)
    renewal.refresh_from_db()
    assert (
        renewal.status == "requested"
        and not PrescriptionOnFile.objects.exclude(pk=record.pk).exists()
    )


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"refills_written": -1}, "zero or more"),
        ({"date_written": "tomorrow"}, "future"),
        ({"expires_on": "a year and a day"}, "at most 365 days"),
        ({"prescriber_licence": " "}, "licence or NPI"),
        ({"quantity_per_fill": 0}, "above zero"),
    ],
)
def test_renew_refuses_what_cannot_be_kept_on_file(localstripe, baclofen_90, changes, reason):
    pharmacist = make_pharmacist()
    record = used_up_record(localstripe, baclofen_90, pharmacist=pharmacist)
    renewal = _sent(record, pharmacist)
    today = timezone.localdate()
    dates = {"tomorrow": today + timedelta(days=1), "a year and a day": today + timedelta(days=366)}
    changes = {key: dates.get(value, value) for key, value in changes.items()}
    with pytest.raises(CareError, match=reason):
        renewals.renewal_renew(renewal=renewal, by=pharmacist, data=renew_input(**changes))
    renewal.refresh_from_db()
    assert renewal.status == "sent" and renewal.renewed_prescription is None


@pytest.mark.django_db(transaction=True)
def test_two_requests_at_once_make_one(localstripe, baclofen_90):
    """The patient's click and the auto-refill job at the same moment, in two PostgreSQL sessions."""
    record = used_up_record(localstripe, baclofen_90)
    barrier, made, errors = threading.Barrier(2), [], []

    def ask(by):
        try:
            barrier.wait()
            made.append(renewals.renewal_request_start(prescription=record, by=by).pk)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=ask, args=(by,)) for by in (record.user, None)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(set(made)) == 1
    assert RenewalRequest.objects.filter(prescription=record).count() == 1


# --- Pages ---------------------------------------------------------------------------------------


def test_patient_one_click_and_status_page_private(client, localstripe, baclofen_90):
    record = used_up_record(localstripe, baclofen_90)
    client.force_login(record.user)
    detail = client.get(reverse("refills:detail", args=[record.pk])).content.decode()
    assert "Ask for a renewal" in detail
    response = client.post(reverse("renewals:start", args=[record.pk]))
    renewal = RenewalRequest.objects.get()
    assert response["Location"] == reverse("renewals:detail", args=[renewal.pk])
    page = client.get(response["Location"])
    assert "Requested" in page.content.decode() and "no-store" in page["Cache-Control"]
    assert (
        "Ask for a renewal"
        not in client.get(reverse("refills:detail", args=[record.pk])).content.decode()
    )
    other = UserFactory()
    client.force_login(other)
    assert client.get(reverse("renewals:detail", args=[renewal.pk])).status_code == 404
    assert client.post(reverse("renewals:start", args=[record.pk])).status_code == 404
    assert client.get(reverse("renewals:prescriber", args=[renewal.pk])).status_code == 403


def test_one_click_on_a_prescription_with_refills_is_a_409_with_its_reason(
    client, localstripe, baclofen_90
):
    user, _, record = approve_first_order(localstripe, baclofen_90, refills=2)
    client.force_login(user)
    response = client.post(reverse("renewals:start", args=[record.pk]))
    assert response.status_code == 409 and "order a refill instead" in response.content.decode()
    assert not RenewalRequest.objects.exists()


def test_prescriber_page_shows_every_field(client, localstripe, baclofen_90):
    pharmacist = make_pharmacist()
    record = used_up_record(localstripe, baclofen_90, pharmacist=pharmacist)
    renewal = renewals.renewal_request_start(prescription=record, by=record.user)
    client.force_login(pharmacist)
    response = client.get(reverse("renewals:prescriber", args=[renewal.pk]))
    page = response.content.decode()
    assert "no-store" in response["Cache-Control"]
    for text in (
        "Riverside Pharmacy",
        "PHY-000000",
        "Jane Doe",
        "May 17, 1980",
        "Baclofen",
        "10mg",
        "1 tablet 3 times a day",
        "90 pills",
        f"{record.last_filled_on:%b %-d, %Y}, 90 pills",
        f"order {record.source_order.number}",
        "@media print",
    ):
        assert text in page, text
    queue = client.get(reverse("renewals:queue")).content.decode()
    assert f"Handle renewal {renewal.pk}" in queue


def test_the_queue_costs_the_same_queries_for_one_request_or_many(
    client, localstripe, baclofen_90, django_assert_max_num_queries
):
    pharmacist = make_pharmacist()
    record = used_up_record(localstripe, baclofen_90, pharmacist=pharmacist)
    renewals.renewal_request_start(prescription=record, by=record.user)
    client.force_login(pharmacist)
    client.get(reverse("renewals:queue"))
    with django_assert_max_num_queries(12) as first:
        client.get(reverse("renewals:queue"))
    for _ in range(3):
        other = used_up_record(localstripe, baclofen_90, pharmacist=pharmacist)
        renewals.renewal_request_start(prescription=other, by=None)
    with django_assert_max_num_queries(len(first.captured_queries)):
        page = client.get(reverse("renewals:queue")).content.decode()
    assert page.count("Handle renewal") == 4 and "by auto-refill" in page
