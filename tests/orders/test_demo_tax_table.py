"""The demo's state sales-tax table (salestax/data/state_rates_2025.csv) and its discount code."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.management import call_command

from discounts.models import DiscountCode
from salestax.models import TaxRate
from salestax.services import tax_rate_in_force

pytestmark = pytest.mark.django_db


def test_the_table_has_every_state_with_its_base_rate_and_keeps_staff_edits():
    call_command("load_sales_tax_table")
    assert TaxRate.objects.count() == 51  # the 50 states and DC
    ny = tax_rate_in_force(state="NY", on=date(2025, 6, 1))
    assert (ny.rate, ny.otc_exempt) == (Decimal("4.000"), True)
    ohio = tax_rate_in_force(state="OH", on=date(2025, 6, 1))
    assert (ohio.rate, ohio.otc_exempt, ohio.shipping_taxable) == (Decimal("5.750"), False, True)
    assert "Tax Foundation" in TaxRate.objects.get(state="CA").note

    TaxRate.objects.filter(state="CA").update(rate=Decimal("7.500"))
    call_command("load_sales_tax_table")
    assert TaxRate.objects.get(state="CA").rate == Decimal("7.500")  # never overwritten
    assert TaxRate.objects.count() == 51


def test_the_demo_discount_code_is_created_once():
    call_command("setup_demo_discount")
    call_command("setup_demo_discount")
    code = DiscountCode.objects.get(code="WELCOME10")
    assert (code.kind, code.value) == ("percent", Decimal("10.00"))
