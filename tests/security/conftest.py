"""Staff by role, as the demo staff command sets them up, plus a view-only order clerk."""

import io
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import call_command

from tests.factories import UserFactory
from tests.orders.conftest import baclofen_90, general_tier  # noqa: F401  (shared fixtures)


@pytest.fixture
def staff(db) -> SimpleNamespace:
    call_command("setup_demo_staff", "--force", stdout=io.StringIO())
    users = get_user_model().objects
    viewer = UserFactory(email="viewer@pharmacy.example", is_staff=True)
    viewer.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_order", "view_outboundemail", "view_prescriptionreview"]
        )
    )
    return SimpleNamespace(
        viewer=viewer,
        pricing=users.get(email="pricing@pharmacy.example"),
        pharmacist=users.get(email="pharmacist@pharmacy.example"),
        admin=users.get(email="admin@pharmacy.example"),
    )


def fresh(user):
    """The same user without the permission cache of an earlier check."""
    return type(user).objects.get(pk=user.pk)
