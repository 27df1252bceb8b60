"""The pages: "My prescriptions" (account only, own records, fixed query budget), the refill
button, the checkout that skips the prescription step, the pharmacist's queue with refills."""

from __future__ import annotations

import re
import uuid

import pytest
from django.urls import reverse

from cart.models import Cart
from orders.state import OrderStatus
from prescriptions.models import PrescriptionOnFile
from tests.factories import UserFactory
from tests.prescriptions.prescription_support import approve_data, make_pharmacist
from tests.prescriptions.refills.support import age_last_fill, approve_first_order, place_refill

pytestmark = pytest.mark.django_db


def test_guests_see_nothing_and_customers_only_their_own(client, localstripe, baclofen_90):
    user, _, record = approve_first_order(localstripe, baclofen_90)
    response = client.get(reverse("refills:list"))
    assert response.status_code == 302 and "login" in response["Location"]
    assert client.get(reverse("refills:detail", args=[record.pk])).status_code == 302
    client.force_login(UserFactory())
    assert "Baclofen" not in client.get(reverse("refills:list")).content.decode()
    assert client.get(reverse("refills:detail", args=[record.pk])).status_code == 404
    client.force_login(user)
    response = client.get(reverse("refills:list"))
    page = response.content.decode()
    assert "Baclofen 10mg" in page and "3 of 3" in page
    assert "no-store" in response["Cache-Control"]


def test_my_prescriptions_query_budget_does_not_grow_with_records(
    client, localstripe, baclofen_90, django_assert_max_num_queries
):
    user, _, _ = approve_first_order(localstripe, baclofen_90)
    client.force_login(user)
    client.get(reverse("refills:list"))
    with django_assert_max_num_queries(6) as first:
        client.get(reverse("refills:list"))
    for _ in range(3):
        approve_first_order(localstripe, baclofen_90, user=user)
    with django_assert_max_num_queries(len(first.captured_queries)):
        response = client.get(reverse("refills:list"))
    assert response.content.decode().count("Baclofen 10mg") == 4


def test_refill_button_fills_the_cart_and_checkout_names_the_prescription(
    client, localstripe, baclofen_90
):
    user, _, record = approve_first_order(localstripe, baclofen_90)
    age_last_fill(record, days=28)
    client.force_login(user)
    detail = client.get(reverse("refills:detail", args=[record.pk])).content.decode()
    assert "uses one refill" in detail and "refill-button" in detail
    response = client.post(reverse("refills:refill", args=[record.pk]), {"tier_id": baclofen_90.pk})
    assert response.status_code == 302
    assert list(Cart.objects.get(user=user).lines.values_list("tier_id", "packages")) == [
        (baclofen_90.pk, 1)
    ]
    page = client.get(reverse("checkout:checkout")).content.decode()
    assert "Refills your prescription for" in page and "Baclofen 10mg" in page
    assert "prescription-step" not in page  # no upload / prescriber step
    # Bad input is a 4xx-free refusal, never a 500.
    response = client.post(reverse("refills:refill", args=[record.pk]), {"tier_id": "x"})
    assert response.status_code == 302
    assert (
        client.post(
            reverse("refills:refill", args=[999999]), {"tier_id": baclofen_90.pk}
        ).status_code
        == 404
    )


def test_queue_lists_refills_apart_with_checks_in_a_fixed_budget(
    client, localstripe, baclofen_90, django_assert_max_num_queries
):
    pharmacist = make_pharmacist()
    user, _, record = approve_first_order(localstripe, baclofen_90, pharmacist=pharmacist)
    approve_first_order(
        localstripe, baclofen_90, user=user, pharmacist=pharmacist
    )  # another medicine on file
    age_last_fill(record, days=28)
    refill = place_refill(localstripe, record, baclofen_90)
    age_last_fill(record, days=10)  # too soon by the time the pharmacist looks
    client.force_login(pharmacist)
    client.get(reverse("prescriptions:review_queue"))
    with django_assert_max_num_queries(14) as first:
        page = client.get(reverse("prescriptions:review_queue")).content.decode()
    assert f"Refill order {refill.number}" in page and "refill too soon" in page
    assert "Refills awaiting review (1)" in page and "Awaiting review (0)" in page
    assert "Other prescriptions on file" in page
    other = UserFactory()
    _, _, record2 = approve_first_order(localstripe, baclofen_90, user=other, pharmacist=pharmacist)
    age_last_fill(record2, days=28)
    place_refill(localstripe, record2, baclofen_90)
    with django_assert_max_num_queries(len(first.captured_queries)):
        page = client.get(reverse("prescriptions:review_queue")).content.decode()
    assert "Refills awaiting review (2)" in page


def test_pharmacist_records_from_the_order_page_and_refuses_a_refill_too_soon(
    client, localstripe, baclofen_90
):
    from tests.orders.conftest import make_cart
    from tests.prescriptions.prescription_support import authorise, place_rx

    pharmacist = make_pharmacist()
    user = UserFactory()
    order = authorise(
        localstripe, place_rx(make_cart(tier=baclofen_90, user=user), tier=baclofen_90, user=user)
    )
    client.force_login(pharmacist)
    page = client.get(reverse("prescriptions:review_order", args=[order.number])).content.decode()
    # One approval, which keeps the prescription on file; the refills written have no default.
    assert (
        page.count('id="approve-submit"') == 1
        and "Approve as ordered" not in page
        and "keep on file" not in page
    )
    assert re.search(
        r'<input type="number" name="rec_\d+_refills_authorised"[^>]*required[^>]*>', page
    )
    assert 'value="0"' not in re.search(
        r'<input type="number" name="rec_\d+_refills_authorised"[^>]*>', page
    ).group(0)
    line = order.lines.get()
    data = approve_data(order, refills=3)
    data[f"rec_{line.pk}_date_written"] = "2026-01-05"
    response = client.post(reverse("prescriptions:review_approve", args=[order.number]), data)
    assert response.status_code == 302
    record = PrescriptionOnFile.objects.get(source_order=order)
    assert (record.refills_authorised, str(record.expires_on)) == (3, "2027-01-05")
    age_last_fill(record, days=28)
    refill = place_refill(localstripe, record, baclofen_90)
    age_last_fill(record, days=5)
    page = client.get(reverse("prescriptions:review_order", args=[refill.number])).content.decode()
    assert "refill too soon" in page
    # Only the refill decision: no generic approval or rejection forms, no "No prescription was given."
    assert (
        'id="approve-form"' not in page
        and "Do not approve" not in page
        and "No prescription was given" not in page
    )
    assert re.search(r'<button type="submit" id="refill-approve" disabled>', page)
    client.post(
        reverse("refills:refill_refuse", args=[refill.number]),
        {"submission_key": str(uuid.uuid4())},
    )
    refill.refresh_from_db()
    assert refill.status == OrderStatus.CANCELED
    # A customer cannot decide.
    client.force_login(user)
    assert (
        client.post(
            reverse("refills:refill_approve", args=[refill.number]),
            {"submission_key": str(uuid.uuid4())},
        ).status_code
        == 403
    )
