"""The account page costs the same number of queries with 1 or 10 addresses and orders."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from .conftest import AddressFactory, PatientProfileFactory, make_order

pytestmark = pytest.mark.django_db
BUDGET = 12


def _count(client, url):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("url_name", ["accounts:dashboard", "accounts:data_export"])
def test_account_pages_query_count_does_not_grow(
    client, customer, django_assert_max_num_queries, url_name
):
    client.force_login(customer)
    PatientProfileFactory(user=customer)
    AddressFactory(user=customer, is_default=True)
    make_order(user=customer, email=customer.email)
    url = reverse(url_name)
    client.get(url)  # warm up the session
    one = _count(client, url)

    from orders.models import Shipment

    for n in range(9):
        AddressFactory(user=customer)
        shipped = make_order(user=customer, email=customer.email, status="shipped")
        Shipment.objects.create(order=shipped, carrier="UPS", tracking_number=f"1Z{n:08d}")
    ten = _count(client, url)
    assert one == ten
    with django_assert_max_num_queries(BUDGET):
        client.get(url)
