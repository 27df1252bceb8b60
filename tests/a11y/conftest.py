"""A shop with orders in several states, for the browser checks of every page (axe, 320 px)."""

from dataclasses import dataclass, field

import pytest
from django.test import Client
from django.urls import reverse

from catalog.models import PackageTier
from orders import services
from prescriptions import decisions as prescription_decisions
from tests.e2e.conftest import general_product  # noqa: F401
from tests.e2e.test_checkout import shop  # noqa: F401  (live server + localstripe webhooks)
from tests.factories import UserFactory
from tests.localstripe import CARD_OK, browser_confirm
from tests.orders.conftest import make_cart, place
from tests.prescriptions.prescription_support import authorise, make_pharmacist, place_rx


@dataclass
class Site:
    url: str
    customer: object
    pharmacist: object
    guest_pages: list = field(default_factory=list)  # paths a visitor with a cart sees
    customer_pages: list = field(default_factory=list)
    staff_pages: list = field(default_factory=list)


def sign_in(context, site: Site, user) -> None:
    client = Client()
    client.force_login(user)
    context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": site.url}]
    )


def fill_cart(page, site: Site, baclofen, general_product) -> None:
    """A visitor's cart with a prescription and a general-sale item, added through the pages."""
    for product, name in (
        (baclofen, "Add to cart (Baclofen 10mg, 90 pills)"),
        (general_product, "Add to cart (Loratadine 10mg, 30 pills)"),
    ):
        page.goto(site.url + product.get_absolute_url())
        page.wait_for_load_state("load")
        page.get_by_role("button", name=name).click()
        page.locator("#cart-feedback [role=status]").wait_for()


@pytest.fixture
def site(shop, localstripe, settings, tmp_path, baclofen, general_product):
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    customer = UserFactory()
    pharmacist = make_pharmacist()
    rx_tier = PackageTier.objects.get(
        dosage__product=baclofen, dosage__strength="10mg", quantity=90
    )
    general_tier = general_product.dosages.get().tiers.get()

    waiting = authorise(
        localstripe,
        place_rx(
            make_cart(tier=rx_tier, user=customer), tier=rx_tier, user=customer, with_file=False
        ),
    )
    approved = authorise(
        localstripe, place_rx(make_cart(tier=rx_tier, packages=2), tier=rx_tier, with_file=False)
    )
    prescription_decisions.prescription_approve(order=approved, by=pharmacist)
    paid = place(make_cart(tier=general_tier)).order
    browser_confirm(
        base=localstripe.base, intent_id=paid.stripe_payment_intent_id, card_number=CARD_OK
    )
    services.order_sync_payment(order_id=paid.pk)
    # Messages with a pharmacist (issue 25): a question about the waiting order, and an answer.
    from prescriptions import messages as rx_messages

    rx_messages.message_post_by_patient(
        patient=customer, body="Can I take this with ibuprofen?", order=waiting
    )
    rx_messages.message_post_by_pharmacist(patient=customer, by=pharmacist, body="Yes, you can.")

    receipt = (
        reverse("orders:receipt", kwargs={"number": paid.number})
        + "?"
        + services.order_link(paid).split("?")[1]
    )
    return Site(
        url=shop.url,
        customer=customer,
        pharmacist=pharmacist,
        guest_pages=[
            "/",
            reverse("catalog:product_list"),
            reverse("catalog:product_list") + "?q=baclofen&sort=price",
            baclofen.category.get_absolute_url(),
            baclofen.get_absolute_url(),
            general_product.get_absolute_url(),
            reverse("cart:detail"),
            reverse("checkout:checkout"),
            services.order_link(approved),
            services.order_link(paid),
            receipt,
            "/accounts/login/",
            "/accounts/signup/",
        ],
        customer_pages=[
            reverse("accounts:dashboard"),
            reverse("accounts:address_add"),
            reverse("accounts:patient_profile"),
            reverse("accounts:password_change"),
            reverse("accounts:close_account"),
            reverse("orders:detail", kwargs={"number": waiting.number}),
            reverse("messaging:thread"),
        ],
        staff_pages=[
            reverse("prescriptions:review_queue"),
            reverse("prescriptions:review_order", kwargs={"number": waiting.number}),
            reverse("prescriptions:review_order", kwargs={"number": approved.number}),
            reverse("messaging:inbox"),
            reverse("messaging:staff_thread", args=[customer.pk]),
        ],
    )
