"""The issue's acceptance test: add Baclofen 10mg × 90, pay with 4242 4242 4242 4242, see the order."""

import re

import pytest
from django.urls import reverse
from djmoney.money import Money

from orders.models import Order
from orders.state import OrderStatus, PaymentStatus
from tests.localstripe import CARD_3DS, CARD_DECLINED, CARD_OK

pytestmark = pytest.mark.e2e


@pytest.fixture
def shop(live_server, localstripe, transactional_db):
    """localstripe delivers its webhooks to the live server, as Stripe would."""
    localstripe.register_webhook(live_server.url + reverse("orders:stripe_webhook"))
    return live_server


def add_to_cart(page, shop, product, strength: str, quantity: int):
    page.goto(shop.url + product.get_absolute_url())
    page.wait_for_load_state(
        "load"
    )  # htmx (deferred) is ready; otherwise the form posts without it
    page.get_by_role(
        "button", name=f"Add to cart ({product.name} {strength}, {quantity} pills)"
    ).click()
    # Either way (htmx or the no-JS post and redirect) the header count shows the pack.
    page.locator("#header-cart .cart-count").filter(has_text=re.compile(r"^[1-9]")).wait_for()


def checkout(page, shop, card: str, *, submit: bool = True):
    page.goto(shop.url + reverse("checkout:checkout"))
    page.get_by_label("Email").fill("alex.morgan@example.com")
    page.get_by_label("Full name").fill("Alex Morgan")
    page.get_by_label("Address line 1").fill("100 River Street")
    page.get_by_label("City").fill("Albany")
    page.get_by_label("State").select_option("NY")
    page.get_by_label("ZIP code").fill("12207")
    if page.locator(
        ".prescription-step"
    ).count():  # prescription items: patient and prescriber (issue #6)
        page.get_by_label("Patient's name").fill("Alex Morgan")
        page.get_by_label("Patient's date of birth").fill("1980-05-17")
        page.get_by_label("Please get it from my prescriber").check()
        page.get_by_label("Prescriber's name").fill("Dr. Ruth Okafor")
        page.get_by_label("Prescriber's phone").fill("518-555-0101")
        page.get_by_label("Prescriber's licence or NPI number").fill("1234567890")
    card_box = page.locator("#card-element")
    card_box.get_by_placeholder("number").fill(card)
    card_box.get_by_placeholder("exp_month").fill("12")
    card_box.get_by_placeholder("exp_year").fill("34")
    card_box.get_by_placeholder("cvc").fill("123")
    card_box.get_by_placeholder("postal_code").fill("12207")
    if submit:
        page.get_by_role("button", name="Place order and pay").click()


def order_page_reached(page) -> Order:
    page.wait_for_url(re.compile(r"/orders/\d+/\?t="))
    number = int(page.locator("#order-number").inner_text())
    return Order.objects.get(number=number)


def test_prescription_order_in_the_browser_is_authorised_and_awaits_review(shop, page, baclofen):
    add_to_cart(page, shop, baclofen, "10mg", 90)
    checkout(page, shop, CARD_OK)
    order = order_page_reached(page)
    assert page.locator("#order-status").get_attribute("data-status") == OrderStatus.AWAITING_REVIEW
    assert page.locator("#payment-status").get_attribute("data-status") == PaymentStatus.AUTHORIZED
    assert "Awaiting pharmacist review" in page.locator("#order-status").inner_text()
    assert page.locator("#order-total").inner_text() == "$78.18"
    order.refresh_from_db()
    assert (order.status, order.payment_status) == (
        OrderStatus.AWAITING_REVIEW,
        PaymentStatus.AUTHORIZED,
    )
    line = order.lines.get()
    assert (line.product_name, line.strength, line.pack_size) == ("Baclofen", "10mg", 90)
    # The cart was emptied once the card was authorised.
    page.goto(shop.url + reverse("cart:detail"))
    assert "Baclofen" not in page.locator("main").inner_text()


def test_general_sale_order_in_the_browser_is_captured(shop, page, general_product):
    add_to_cart(page, shop, general_product, "10mg", 30)
    checkout(page, shop, CARD_OK)
    order = order_page_reached(page)
    assert page.locator("#payment-status").get_attribute("data-status") == PaymentStatus.CAPTURED
    assert page.locator("#order-status").get_attribute("data-status") == OrderStatus.READY_TO_SHIP
    order.refresh_from_db()
    assert order.amount_captured == order.total


def test_declined_card_shows_the_reason_and_keeps_the_cart(shop, page, general_product):
    add_to_cart(page, shop, general_product, "10mg", 30)
    checkout(page, shop, CARD_DECLINED)
    error = page.locator("#card-error")
    error.filter(has_text="declined").wait_for()
    assert "/checkout/" in page.url
    assert page.get_by_role("button", name="Place order and pay").is_enabled()
    # Another card, same page: the first attempt is replaced, the new one goes through.
    card_box = page.locator("#card-element")
    card_box.get_by_placeholder("number").fill(CARD_OK)
    page.get_by_role("button", name="Place order and pay").click()
    order = order_page_reached(page)
    assert order.payment_status == PaymentStatus.CAPTURED
    assert Order.objects.filter(status=OrderStatus.CANCELED).count() == 1
    assert not Order.objects.awaiting_payment().exists()


def test_three_d_secure_in_the_browser(shop, page, baclofen):
    add_to_cart(page, shop, baclofen, "10mg", 90)
    checkout(page, shop, CARD_3DS)
    page.get_by_role("button", name="Complete authentication").click()
    order = order_page_reached(page)
    assert page.locator("#payment-status").get_attribute("data-status") == PaymentStatus.AUTHORIZED
    assert order.status == OrderStatus.AWAITING_REVIEW


def test_a_price_change_before_paying_is_shown_and_confirmed_in_the_browser(
    shop, page, general_product
):
    add_to_cart(page, shop, general_product, "10mg", 30)
    checkout(page, shop, CARD_OK, submit=False)
    tier = general_product.dosages.get().tiers.get()
    tier.price = Money("14.00", "USD")
    tier.save()
    page.get_by_role("button", name="Place order and pay").click()
    changes = page.locator("#checkout-changes")
    changes.wait_for()
    assert "$12.00 per pack → $14.00 per pack" in changes.inner_text()
    assert page.locator("#checkout-changes-total").inner_text() == "$23.95"
    assert not Order.objects.exists()
    page.get_by_role("button", name="Confirm new total and pay").click()
    order = order_page_reached(page)
    assert order.total == Money("23.95", "USD") and order.payment_status == PaymentStatus.CAPTURED
