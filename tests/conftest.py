"""Fixtures shared by every test module."""

import json
from pathlib import Path

import pytest
from django.core.cache import cache
from django.test import Client
from djmoney.money import Money

from catalog.models import LegalClass
from tests.browser import browser, browser_viewport, page  # noqa: F401  (shared Chromium fixtures)
from tests.factories import (
    CategoryFactory,
    DosageFactory,
    PackageTierFactory,
    ProductFactory,
    UserFactory,
)
from tests.localstripe import localstripe, localstripe_server  # noqa: F401  (shared Stripe fixtures)


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """allauth keeps its rate-limit counters in the cache (in-process here): one test's sign-ins
    must not count against the next one's."""
    cache.clear()
    yield


@pytest.fixture(autouse=True)
def _staff_force_login_passes_second_factor(monkeypatch):
    """Anyone who can act as staff needs a second factor (``pharmacy.permissions.can_act_as_staff``:
    staff status, superuser, any group or permission); ``force_login`` of such a user gives the
    session one, as ``tests.accounts.mfa.staff_login`` does (``password_only_login`` does not)."""
    from pharmacy.permissions import can_act_as_staff
    from tests.accounts.mfa import _force_login, mark_second_factor

    def force_login(self, user, backend=None):
        _force_login(self, user, backend)
        # A fresh copy: the test may have given the user a group since it was loaded.
        if can_act_as_staff(type(user).objects.get(pk=user.pk)):
            mark_second_factor(self, user)

    monkeypatch.setattr(Client, "force_login", force_login)


GOLDEN = json.loads((Path(__file__).parent / "data" / "baclofen_golden.json").read_text())


@pytest.fixture
def golden() -> dict:
    """The reference Baclofen tier rows: exact acceptance figures."""
    return GOLDEN


@pytest.fixture
def baclofen(db):
    """Baclofen as the reference page sells it: 2 dosages, 12 tiers, prescription only."""
    category = CategoryFactory(name="Muscle and joint", slug="muscle-and-joint")
    product = ProductFactory(
        name="Baclofen",
        slug="baclofen",
        category=category,
        active_ingredient="baclofen",
        legal_class=LegalClass.PRESCRIPTION,
        indications="spasticity, multiple sclerosis, spinal cord injury",
        summary="A muscle relaxant for spasticity.",
    )
    for dosage_data in GOLDEN["dosages"]:
        strength = dosage_data["strength"]
        dosage = DosageFactory(
            product=product,
            strength=strength,
            strength_value=strength.removesuffix("mg"),
            list_price_per_pill=Money(GOLDEN["list_price_per_pill"][strength], "USD"),
        )
        for position, tier in enumerate(dosage_data["tiers"]):
            PackageTierFactory(
                dosage=dosage,
                quantity=tier["quantity"],
                price=Money(tier["price"], "USD"),
                sku=f"BAC-{strength.upper()}-{tier['quantity']}",
                position=position,
            )
    return product


@pytest.fixture
def customer(db):
    return UserFactory()


@pytest.fixture(autouse=True)
def _empty_cache():
    """Each test starts with an empty cache: cached catalog pages must not outlive the test's data."""
    from django.core.cache import caches

    for backend in caches.all():
        backend.clear()
    yield
