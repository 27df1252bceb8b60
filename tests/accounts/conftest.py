import factory
import pytest

from accounts.models import Address, PatientProfile
from tests.factories import UserFactory

PASSWORD = "correct horse battery staple"


class AddressFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Address

    user = factory.SubFactory(UserFactory)
    full_name = "Alex Morgan"
    line1 = factory.Sequence(lambda n: f"{n + 1} Main Street")
    line2 = ""
    city = "Albany"
    state = "NY"
    postal_code = "12207"


class PatientProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PatientProfile

    user = factory.SubFactory(UserFactory)
    phone = "+1 555 0142"
    allergies = "Penicillin (rash)"
    current_medicines = "Lisinopril 10mg daily"
    prescriber_name = "Dr. Jordan Lee"
    prescriber_phone = "+1 555 0199"
    prescriber_licence = "1234567893"


@pytest.fixture
def other_customer(db):
    return UserFactory(email="someone.else@example.com")


@pytest.fixture
def signed_in(client, customer):
    client.force_login(customer)
    return client
