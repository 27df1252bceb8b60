"""Staff see and edit discount codes and tax rates in the admin; orders show their discount and tax."""

from decimal import Decimal

import pytest
from django.utils import timezone

from discounts.models import DiscountCode
from salestax.models import TaxRate
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_staff_create_a_discount_code_and_a_tax_rate_and_both_are_audited(admin_client):
    response = admin_client.post(
        "/admin/discounts/discountcode/add/",
        {
            "code": "spring10",
            "description": "Spring",
            "is_active": "on",
            "kind": "percent",
            "value": "10",
            "min_subtotal": "0",
            "max_uses": "100",
            "max_uses_per_email": "1",
            "applies_to_general_sale": "on",
            "applies_to_pharmacy": "on",
            "redemptions-TOTAL_FORMS": "0",
            "redemptions-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    code = DiscountCode.objects.get()
    assert code.code == "SPRING10" and code.history.count() == 1
    listing = admin_client.get("/admin/discounts/discountcode/").content.decode()
    assert "SPRING10" in listing

    response = admin_client.post(
        "/admin/salestax/taxrate/add/",
        {
            "state": "NY",
            "rate": "8.875",
            "shipping_taxable": "on",
            "effective_from": timezone.localdate().isoformat(),
            "note": "NYS",
        },
    )
    assert response.status_code == 302
    rate = TaxRate.objects.get()
    assert rate.rate == Decimal("8.875") and rate.history.count() == 1
    assert admin_client.get(f"/admin/salestax/taxrate/{rate.pk}/history/").status_code == 200


def test_a_percent_above_100_is_refused(admin_client):
    response = admin_client.post(
        "/admin/discounts/discountcode/add/",
        {
            "code": "BAD",
            "kind": "percent",
            "value": "150",
            "min_subtotal": "0",
            "redemptions-TOTAL_FORMS": "0",
            "redemptions-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200 and not DiscountCode.objects.exists()
