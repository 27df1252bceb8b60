import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory

from catalog.models import PackageTier


@pytest.fixture
def tier_of(baclofen):
    """Look up a reference Baclofen tier: ``tier_of("10mg", 90)``."""

    def get(strength: str, quantity: int) -> PackageTier:
        return PackageTier.objects.select_related("dosage__product").get(
            dosage__product=baclofen, dosage__strength=strength, quantity=quantity
        )

    return get


@pytest.fixture
def make_request(db):
    """A request with a real database session, for calling the services directly."""

    def build(user=None, session=None):
        from django.contrib.auth.models import AnonymousUser

        request = RequestFactory().post("/cart/add/")
        request.session = session if session is not None else SessionStore()
        request.user = user or AnonymousUser()
        return request

    return build
