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


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """PBKDF2's deliberate slowness is not what these tests are about."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def other_customer(db):
    return UserFactory(email="someone.else@example.com")


@pytest.fixture
def signed_in(client, customer):
    client.force_login(customer)
    return client


def make_order(
    *, user=None, email="guest@example.com", status="awaiting_review", total="42.50", **extra
):
    """An order as the orders app stores it (a snapshot of email and address)."""
    from djmoney.money import Money

    from orders.models import Order, OrderNumber, ShippingMethod

    number = OrderNumber.objects.create().number
    return Order.objects.create(
        number=number,
        user=user,
        email=email,
        status=status,
        payment_status=extra.pop("payment_status", "authorized"),
        ship_name="Alex Morgan",
        ship_line1="12 Elm Street",
        ship_city="Albany",
        ship_state="NY",
        ship_zip="12207",
        shipping_method=ShippingMethod.STANDARD,
        subtotal=Money(total, "USD"),
        savings=Money("0.00", "USD"),
        shipping=Money("0.00", "USD"),
        total=Money(total, "USD"),
        **extra,
    )


def emails_to(recipient: str, *, kind=None) -> list:
    """Outbox rows addressed to ``recipient`` (oldest first), optionally of one kind."""
    from notifications.models import OutboundEmail

    rows = OutboundEmail.objects.filter(recipient__iexact=recipient).order_by("created_at", "pk")
    return list(rows.filter(kind=kind) if kind else rows)


def emailed_link(email) -> str:
    """The first link to this shop in an outbox email's text, as a path the test client can open."""
    import re

    match = re.search(r"https?://[^/\s]+(/\S+)", email.context["text"])
    assert match, email.context["text"]
    return match.group(1)


def page_without_tokens(response) -> str:
    """A page's HTML without what differs on every request (CSP nonce, CSRF token)."""
    import re

    html = response.content.decode()
    html = re.sub(r'(nonce|Nonce)(=|": )"[^"]*"', r"\1\2\"\"", html)
    html = re.sub(r'"X-CSRFToken": "[^"]*"', "", html)
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", html)
