import pytest
from django.urls import reverse

from tests.factories import UserFactory

from .conftest import AddressFactory, PatientProfileFactory

pytestmark = pytest.mark.django_db


def test_staff_see_a_customers_health_details_and_addresses_in_the_admin(client, customer):
    PatientProfileFactory(user=customer, allergies="Sulfa drugs")
    AddressFactory(user=customer, line1="12 Elm Street", is_default=True)
    admin_user = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(admin_user)
    page = client.get(reverse("admin:accounts_user_change", args=[customer.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert "Sulfa drugs" in body and "12 Elm Street" in body
    assert client.get(reverse("admin:accounts_user_add")).status_code == 200
    assert client.get(reverse("admin:accounts_user_changelist") + "?q=customer").status_code == 200


def test_customers_cannot_open_the_admin(signed_in):
    response = signed_in.get(reverse("admin:accounts_user_changelist"))
    assert response.status_code == 302
