"""The pharmacist group gets the review permissions from the demo staff command."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from prescriptions.queue import is_pharmacist

pytestmark = pytest.mark.django_db


def test_demo_staff_pharmacist_can_review_and_pricing_cannot(settings, client):
    call_command("setup_demo_staff", "--force", stdout=io.StringIO())
    call_command("setup_demo_staff", "--force", stdout=io.StringIO())  # idempotent
    users = get_user_model().objects
    pharmacist = users.get(email="pharmacist@pharmacy.example")
    pricing = users.get(email="pricing@pharmacy.example")
    assert is_pharmacist(pharmacist) and pharmacist.has_perm("prescriptions.review_prescription")
    assert pharmacist.has_perm("prescriptions.view_prescription") and pharmacist.has_perm(
        "orders.change_order"
    )
    assert not is_pharmacist(pricing) and not pricing.has_perm("prescriptions.review_prescription")
    client.force_login(pharmacist)
    assert client.get("/staff/review/").status_code == 200
    assert client.get("/admin/prescriptions/prescriptionreview/").status_code == 200
    client.force_login(pricing)
    assert client.get("/staff/review/").status_code == 403
