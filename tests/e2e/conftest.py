"""Headless Chromium (Playwright, sync API) against pytest-django's live server.

The `browser` and `page` fixtures are shared by all browser tests: tests/browser.py."""

import pytest
from djmoney.money import Money

from catalog.models import LegalClass
from tests.factories import DosageFactory, PackageTierFactory, ProductFactory


@pytest.fixture
def general_product(transactional_db):
    """A general-sale medicine: no prescription, so its payment is captured at once."""
    product = ProductFactory(
        name="Loratadine", slug="loratadine", legal_class=LegalClass.GENERAL_SALE
    )
    dosage = DosageFactory(
        product=product, strength="10mg", list_price_per_pill=Money("0.50000", "USD")
    )
    PackageTierFactory(dosage=dosage, quantity=30, price=Money("12.00", "USD"), sku="LOR-10-30")
    return product
