"""The checkout page and the order page: who may see them, what they show, how many queries."""

import pytest
from django.urls import reverse
from djmoney.money import Money

from cart.models import CartLine
from orders import services
from orders.models import Order, Shipment
from tests.factories import PackageTierFactory, UserFactory
from tests.localstripe import CARD_DECLINED, CARD_OK, browser_confirm
from tests.orders.conftest import attach_to_session, make_cart, place

pytestmark = pytest.mark.django_db


def test_empty_cart_is_sent_back_to_the_cart_page(client):
    response = client.get(reverse("checkout:checkout"))
    assert response.status_code == 302 and response.url == reverse("cart:detail")


def test_checkout_page_shows_the_cart_summary_and_card_field(localstripe, client, baclofen_90):
    attach_to_session(client, make_cart(tier=baclofen_90))
    response = client.get(reverse("checkout:checkout"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Baclofen 10mg, 90 pills" in html and "$78.18" in html
    assert 'id="card-element"' in html
    assert localstripe.js_url in html and "localstripe-adapter.js" in html
    assert 'name="total"' not in html  # nothing price-like is posted back


def test_localstripe_adapter_is_not_loaded_against_real_stripe(client, general_tier, settings):
    settings.STRIPE_API_BASE = ""
    settings.STRIPE_JS_URL = "https://js.stripe.com/v3/"
    attach_to_session(client, make_cart(tier=general_tier))
    html = client.get(reverse("checkout:checkout")).content.decode()
    assert "https://js.stripe.com/v3/" in html and "localstripe-adapter" not in html


def test_signed_in_customer_gets_their_email_prefilled(client, customer, general_tier):
    client.force_login(customer)
    make_cart(tier=general_tier, user=customer)
    html = client.get(reverse("checkout:checkout")).content.decode()
    assert f'value="{customer.email}"' in html


def test_posting_without_javascript_places_no_order(client, general_tier):
    attach_to_session(client, make_cart(tier=general_tier))
    response = client.post(
        reverse("checkout:checkout"),
        {
            "email": "a@example.com",
            "name": "A",
            "line1": "1 St",
            "city": "Albany",
            "state": "NY",
            "zip_code": "122071234",
            "shipping_method": "standard",
        },
    )
    assert response.status_code == 400
    assert "needs JavaScript" in response.content.decode()
    assert not Order.objects.exists()


def test_checkout_page_query_budget_does_not_grow_with_lines(
    localstripe, client, general_tier, django_assert_max_num_queries
):
    cart = make_cart(tier=general_tier)
    attach_to_session(client, cart)
    # Issue #17: 6 before; the header's cart count now comes from the page's summary, and the
    # cart, its lines and their refill links are one query: the session and that query.
    with django_assert_max_num_queries(2):
        assert client.get(reverse("checkout:checkout")).status_code == 200
    for i in range(6):
        tier = PackageTierFactory(quantity=10 + i, price=Money("5.00", "USD"))
        CartLine.objects.create(cart=cart, tier=tier, packages=1, price_when_added=tier.price)
    with django_assert_max_num_queries(2):
        response = client.get(reverse("checkout:checkout"))
    html = response.content.decode()
    assert html.count('class="num">1</td>') == 7
    assert '<span class="cart-count">7</span><span class="visually-hidden"> items</span>' in html


def test_order_page_through_the_signed_link_and_for_the_owner_only(
    localstripe, client, baclofen_90
):
    owner = UserFactory()
    placed = place(make_cart(tier=baclofen_90, user=owner), user=owner)
    order = placed.order
    browser_confirm(
        base=localstripe.base, intent_id=order.stripe_payment_intent_id, card_number=CARD_OK
    )
    url = reverse("orders:detail", kwargs={"number": order.number})

    assert client.get(url).status_code == 404
    assert client.get(url + "?t=forged").status_code == 404
    other = place(make_cart(tier=baclofen_90)).order
    assert (
        client.get(url + "?t=" + services.order_access_token(other)).status_code == 404
    )  # another order's token

    # The order is in an account: its emailed link opens nothing, the page says to sign in.
    refused = client.get(services.order_link(order))
    assert refused.status_code == 403 and "now kept in an account" in refused.content.decode()
    client.force_login(UserFactory())
    assert client.get(url).status_code == 404
    assert client.get(services.order_link(order)).status_code == 403

    client.force_login(owner)
    response = client.get(url)  # the page asks Stripe: authorised now
    html = response.content.decode()
    assert response.status_code == 200
    assert f'Order <span id="order-number">{order.number}</span>' in html
    assert "Awaiting pharmacist review" in html and "Authorised" in html
    assert "$78.18" in html


def test_order_page_after_a_declined_card_says_so(localstripe, client, general_tier):
    order = place(make_cart(tier=general_tier)).order
    browser_confirm(
        base=localstripe.base, intent_id=order.stripe_payment_intent_id, card_number=CARD_DECLINED
    )
    html = client.get(services.order_link(order)).content.decode()
    assert "Your payment did not go through" in html and "Your card was declined." in html
    assert "cart still holds your items" in html


def test_order_page_query_budget_does_not_grow_with_lines(
    localstripe, client, general_tier, django_assert_max_num_queries
):
    cart = make_cart(tier=general_tier)
    for i in range(5):
        tier = PackageTierFactory(quantity=10 + i, price=Money("5.00", "USD"))
        CartLine.objects.create(cart=cart, tier=tier, packages=1, price_when_added=tier.price)
    order = place(cart).order
    browser_confirm(
        base=localstripe.base, intent_id=order.stripe_payment_intent_id, card_number=CARD_OK
    )
    services.order_sync_payment(order_id=order.pk)
    # order, lines, prescription review, shipment, timeline (+ session)
    with django_assert_max_num_queries(7):
        response = client.get(services.order_link(order))
    assert response.status_code == 200
    assert response.content.decode().count('class="num">1</td>') == 6


def test_order_page_shows_the_customer_timeline_tracking_and_a_claim_link_for_guests(
    localstripe, client, general_tier
):
    order = place(make_cart(tier=general_tier)).order
    browser_confirm(
        base=localstripe.base, intent_id=order.stripe_payment_intent_id, card_number=CARD_OK
    )
    services.order_sync_payment(order_id=order.pk)
    Shipment.objects.create(order=order, carrier="USPS", tracking_number="9400111899223344556677")
    html = client.get(services.order_link(order)).content.decode()
    timeline = html.split('id="order-timeline"')[1].split("</ol>")[0]
    assert (
        "Order placed" in timeline
        and "Being prepared for shipping" in timeline
        and "Payment: paid" in timeline
    )
    assert "9400111899223344556677" in html and "USPS" in html
    assert reverse("accounts:claim_order", kwargs={"number": order.number}) in html


def test_order_page_offers_no_claim_link_to_the_signed_in_owner(
    localstripe, client, general_tier, customer
):
    order = place(make_cart(tier=general_tier, user=customer), user=customer).order
    client.force_login(customer)
    html = client.get(reverse("orders:detail", kwargs={"number": order.number})).content.decode()
    assert 'id="claim-order"' not in html


# --- The signed link's lifetime: a controlled clock (signing reads time.time) ----------------


def test_the_signed_link_opens_a_guest_order_until_its_lifetime_ends_to_the_second(
    client, settings
):
    from datetime import UTC, datetime, timedelta

    import time_machine

    from tests.accounts.conftest import make_order

    settings.ORDER_LINK_MAX_AGE_DAYS = 3
    order = make_order(email="guest.clock@example.com")
    signed_at = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    with time_machine.travel(signed_at, tick=False):
        link = services.order_link(order)
    claim = (
        reverse("accounts:claim_order", kwargs={"number": order.number}) + "?" + link.split("?")[1]
    )
    end = signed_at + timedelta(days=3)

    with time_machine.travel(end - timedelta(seconds=1), tick=False):
        page = client.get(link)
        assert page.status_code == 200 and 'id="claim-order"' in page.content.decode()
        assert client.get(claim).status_code == 200
    with time_machine.travel(end + timedelta(seconds=1), tick=False):
        expired = client.get(link)
        assert expired.status_code == 410
        text = expired.content.decode()
        assert "This link has expired." in text and "for 3 days" in text
        assert f"{reverse('accounts:login')}?next=%2Forders%2F{order.number}%2F" in text
        assert "no-store" in expired["Cache-Control"]
        expired_claim = client.get(claim)
        assert (
            expired_claim.status_code == 410
            and "The link to this order has expired." in expired_claim.content.decode()
        )
        receipt = (
            reverse("orders:receipt", kwargs={"number": order.number}) + "?" + link.split("?")[1]
        )
        assert client.get(receipt).status_code == 410
