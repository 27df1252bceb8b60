"""Fixtures for the messages tests: a patient with a baclofen order, pharmacists, staff without the right."""

from __future__ import annotations

import pytest
from djmoney.money import Money

from tests.accounts.conftest import make_order
from tests.factories import UserFactory
from tests.orders.conftest import baclofen_90, general_tier  # noqa: F401  (shared fixtures)
from tests.prescriptions.prescription_support import make_pharmacist


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def patient(db):
    return UserFactory(email="jane@example.com", first_name="Jane", last_name="Doe")


@pytest.fixture
def other_patient(db):
    return UserFactory(email="someone.else@example.com", first_name="Sam", last_name="Other")


@pytest.fixture
def pharmacist(db):
    return make_pharmacist(email="ruth@pharmacy.example", first_name="Ruth", last_name="Okafor")


@pytest.fixture
def clerk(db):
    """A member of staff (second factor, staff status) without the right to read messages."""
    return UserFactory(email="clerk@pharmacy.example", is_staff=True)


def order_with_line(*, user, tier, status: str = "shipped"):
    """A paid order of ``tier`` for ``user``: what a patient asks a pharmacist about."""
    from orders.models import OrderLine

    order = make_order(
        user=user, email=user.email, status=status, payment_status="captured", total="30.00"
    )
    OrderLine.objects.create(
        order=order,
        tier=tier,
        product_name=tier.dosage.product.name,
        strength=tier.dosage.strength,
        pack_size=tier.quantity,
        packages=1,
        unit_price=tier.price,
        per_pill=Money("0.30", "USD"),
        list_price=tier.list_price,
        line_total=tier.price,
        requires_prescription=True,
    )
    return order


@pytest.fixture
def patient_order(patient, baclofen_90):
    return order_with_line(user=patient, tier=baclofen_90)
