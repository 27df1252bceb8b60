"""A discount code's dates at the boundary. ``DiscountCode.starts_at``/``ends_at`` are instants
(not days): a code works from ``starts_at`` itself up to, but not including, ``ends_at`` — so a
code meant to run through March 31 is given ``ends_at`` = April 1, 00:00 in the shop's zone."""

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from discounts.models import DiscountCode, DiscountKind
from discounts.services import DiscountRefused, discount_terms_for

pytestmark = pytest.mark.django_db

TICK = timedelta(microseconds=1)


@pytest.fixture
def march():
    starts = timezone.make_aware(datetime(2026, 3, 1))
    ends = timezone.make_aware(datetime(2026, 4, 1))
    DiscountCode.objects.create(
        code="MARCH", kind=DiscountKind.PERCENT, value=Decimal("10"), starts_at=starts, ends_at=ends
    )
    return starts, ends


def test_a_code_works_through_the_last_moment_of_its_last_day_and_not_at_its_end(march):
    _, ends = march
    assert discount_terms_for(code="march", now=ends - TICK)["code"] == "MARCH"
    with pytest.raises(DiscountRefused, match="The code MARCH has expired."):
        discount_terms_for(code="march", now=ends)


def test_a_code_works_from_its_first_moment_and_not_before(march):
    starts, _ = march
    assert discount_terms_for(code="march", now=starts)["code"] == "MARCH"
    with pytest.raises(DiscountRefused, match="The code MARCH is not valid yet."):
        discount_terms_for(code="march", now=starts - TICK)
