"""First deployment: ``setup_staff_groups`` gives a real shop its staff groups, and no demo user."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command


@pytest.mark.django_db
def test_setup_staff_groups_creates_the_groups_with_their_rights_and_no_users(settings):
    settings.DEBUG = False  # production: setup_demo_staff would stop here
    for _ in range(2):  # run on every release (deploy/release.sh): the second run changes nothing
        call_command("setup_staff_groups", stdout=io.StringIO())

    pharmacist = Group.objects.get(name="pharmacist")
    rights = {
        f"{p.content_type.app_label}.{p.codename}"
        for p in pharmacist.permissions.select_related("content_type")
    }
    assert {
        "prescriptions.review_prescription",
        "prescriptions.approve_prescription",
        "catalog.view_product",
    } <= rights
    assert "orders.refund_order" not in rights  # refunds stay with those given them
    pricing = {p.codename for p in Group.objects.get(name="pricing").permissions.all()}
    assert "change_packagetier" in pricing and not any(code.endswith("_order") for code in pricing)
    assert Group.objects.count() == 2
    assert not get_user_model().objects.exists()
