"""A refill is checked before any payment: too soon says from when and cannot be paid for (the
day before that date refused, the date itself allowed); the refill checkout offers the last
address shipped to and the price of one pill."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from cart.models import Cart
from checkout.placement import order_place
from orders import services
from orders.models import Order
from prescriptions import refill_cart, refill_rules
from prescriptions.models import CartRefill
from tests.orders.conftest import ADDRESS, shown_figures
from tests.prescriptions.refills.support import age_last_fill, approve_first_order

pytestmark = pytest.mark.django_db

# 90 pills at 3 a day last 30 days; a refill is possible once 75 % is used: ceil(22.5) = 23 days after the fill.
DUE_AFTER_DAYS = 23


def test_refill_is_too_soon_until_the_day_it_is_due_and_not_a_day_longer(
    client, localstripe, baclofen_90
):
    user, _, record = approve_first_order(localstripe, baclofen_90, refills=3)
    cart = Cart.objects.get_or_create(user=user)[0]
    client.force_login(user)

    age_last_fill(record, days=DUE_AFTER_DAYS - 1)  # due tomorrow
    tomorrow = timezone.localdate() + timedelta(days=1)
    due_text = f"Too soon, from {tomorrow:%B %-d, %Y}"
    with pytest.raises(refill_rules.RefillError, match=due_text):
        refill_cart.refill_add_to_cart(
            cart=cart, user=user, record_id=record.pk, tier_id=baclofen_90.pk
        )
    listing = client.get(reverse("refills:list")).content.decode()
    assert due_text in listing and "New prescription needed" not in listing
    detail = client.get(reverse("refills:detail", args=[record.pk])).content.decode()
    assert re.search(r'<button type="submit" id="refill-button" disabled>\s*' + due_text, detail)
    response = client.post(
        reverse("refills:refill", args=[record.pk]), {"tier_id": baclofen_90.pk}, follow=True
    )
    assert due_text in response.content.decode() and not cart.lines.exists()

    age_last_fill(record, days=DUE_AFTER_DAYS)  # due today
    refill_cart.refill_add_to_cart(
        cart=cart, user=user, record_id=record.pk, tier_id=baclofen_90.pk
    )
    assert list(cart.lines.values_list("tier_id", flat=True)) == [baclofen_90.pk]
    detail = client.get(reverse("refills:detail", args=[record.pk])).content.decode()
    assert "Too soon" not in detail


def test_a_too_soon_refill_cannot_be_paid_even_when_posted_directly(
    client, localstripe, baclofen_90
):
    user, _, record = approve_first_order(localstripe, baclofen_90, refills=3)
    age_last_fill(record, days=DUE_AFTER_DAYS - 1)
    # The refill line is in the cart (say it was added before another fill was counted).
    cart = Cart.objects.get_or_create(user=user)[0]
    line = cart.lines.create(tier=baclofen_90, packages=1, price_when_added=baclofen_90.price)
    CartRefill.objects.create(cart_line=line, prescription=record)
    client.force_login(user)
    tomorrow = timezone.localdate() + timedelta(days=1)

    page = client.get(reverse("checkout:checkout")).content.decode()
    assert f"Too soon, from {tomorrow:%B %-d, %Y}" in page
    assert re.search(r'id="pay-button"[^>]*disabled', page)
    form = {
        "email": user.email,
        "name": "Jane Doe",
        "line1": "100 River Street",
        "city": "Albany",
        "state": "NY",
        "zip_code": "12207",
        "shipping_method": "standard",
        "figures": shown_figures(client),
    }
    response = client.post(reverse("checkout:checkout"), form, HTTP_ACCEPT="application/json")
    assert response.status_code == 400 and "too soon" in response.json()["message"]
    with pytest.raises(services.OrderError, match="too soon"):
        order_place(
            cart=cart, email=user.email, address=ADDRESS, shipping_method="standard", user=user
        )
    assert Order.objects.filter(user=user).count() == 1  # only the first order

    age_last_fill(record, days=DUE_AFTER_DAYS)  # the due day itself: paid for
    placed = order_place(
        cart=cart, email=user.email, address=ADDRESS, shipping_method="standard", user=user
    )
    assert placed.order.refills.get().prescription == record


def test_refill_checkout_offers_the_last_address_and_the_price_of_a_pill(
    client, localstripe, baclofen_90
):
    user, first, record = approve_first_order(localstripe, baclofen_90, refills=3)
    age_last_fill(record, days=DUE_AFTER_DAYS)
    refill_cart.refill_add_to_cart(
        cart=Cart.objects.get(user=user), user=user, record_id=record.pk, tier_id=baclofen_90.pk
    )
    client.force_login(user)
    page = client.get(reverse("checkout:checkout")).content.decode()
    assert f'value="{first.ship_line1}"' in page and f'value="{first.ship_zip}"' in page
    assert re.search(r'<option value="NY" selected>', page)
    per_pill = (baclofen_90.price.amount / 90).quantize(baclofen_90.price.amount)
    assert f"90 pills for ${baclofen_90.price.amount}: <strong>${per_pill} a pill</strong>" in page
    assert not re.search(r'id="pay-button"[^>]*disabled', page)
