"""Every page that shows personal or health data tells browsers and proxies not to store it."""

import pytest
from django.test import Client
from django.urls import reverse

from cart.models import Cart, CartLine
from orders.services import order_link
from prescriptions.models import Prescription
from tests.orders.conftest import make_cart
from tests.prescriptions.prescription_support import authorise, make_pharmacist, place_rx

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def private_root(settings, tmp_path):
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"


@pytest.fixture
def rx_order(localstripe, baclofen_90, customer, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        placed = place_rx(
            make_cart(tier=baclofen_90, user=customer), tier=baclofen_90, user=customer
        )
    order = authorise(localstripe, placed)
    # Something in the cart again, for the cart and checkout pages.
    cart, _ = Cart.objects.get_or_create(user=customer)
    CartLine.objects.create(
        cart=cart, tier=baclofen_90, packages=1, price_when_added=baclofen_90.price
    )
    return order


def assert_not_stored(response, what: str) -> None:
    assert response.status_code in (200, 400), f"{what}: {response.status_code}"
    assert "no-store" in response.get("Cache-Control", ""), (
        f"{what} may be cached: {response.get('Cache-Control')!r}"
    )


def test_pages_with_personal_or_health_data_send_no_store(rx_order, customer, client, baclofen_90):
    prescription = Prescription.objects.get(order=rx_order)
    client.force_login(customer)
    customer_pages = {
        "cart": reverse("cart:detail"),
        "checkout (allergies, current medicines)": reverse("checkout:checkout"),
        "order page": reverse("orders:detail", args=[rx_order.number]),
        "prescription file": reverse("prescriptions:prescription_file", args=[prescription.pk]),
        "account": reverse("accounts:dashboard"),
        "health profile": reverse("accounts:patient_profile"),
        "data export": reverse("accounts:data_export"),
        "address form": reverse("accounts:address_add"),
        "close account": reverse("accounts:close_account"),
    }
    for what, url in customer_pages.items():
        assert_not_stored(client.get(url), what)
    # Answers that repeat what was typed (a refused checkout) are private too.
    assert_not_stored(client.post(reverse("checkout:checkout"), {"email": "x"}), "refused checkout")
    assert_not_stored(
        client.post(reverse("cart:add"), {"tier_id": "x"}, headers={"HX-Request": "true"}),
        "cart fragment",
    )
    # A guest's signed link to the order page.
    guest_order = place_rx(make_cart(tier=baclofen_90), tier=baclofen_90).order
    assert_not_stored(Client().get(order_link(guest_order)), "order page by signed link")

    client.force_login(make_pharmacist())
    staff_pages = {
        "review queue": reverse("prescriptions:review_queue"),
        "review page": reverse("prescriptions:review_order", args=[rx_order.number]),
        "admin order": reverse("admin:orders_order_change", args=[rx_order.pk]),
        "admin patient details": reverse("admin:prescriptions_patientdetails_changelist"),
        "prescription file (pharmacist)": reverse(
            "prescriptions:prescription_file", args=[prescription.pk]
        ),
    }
    for what, url in staff_pages.items():
        assert_not_stored(client.get(url), what)
    refused = client.post(
        reverse("prescriptions:review_reject", args=[rx_order.number]),
        {"submission_key": "", "reason": ""},
    )
    assert_not_stored(refused, "review page after a refused decision")
