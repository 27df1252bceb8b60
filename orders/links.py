"""Links to an order: the signed token that opens an order's page without signing in.

Its own small module because the order's pages, its emails (``orders.emails``) and the account
pages all need it, and none of them should import the checkout services for it.
"""
from __future__ import annotations

from datetime import timedelta

from django.core import signing
from django.urls import reverse

from .models import Order

ORDER_LINK_SALT = "orders.order-link"
ORDER_LINK_MAX_AGE = timedelta(days=90)


def order_access_token(order: Order) -> str:
    return signing.TimestampSigner(salt=ORDER_LINK_SALT).sign(str(order.id))


def order_token_is_valid(*, order: Order, token: str) -> bool:
    try:
        value = signing.TimestampSigner(salt=ORDER_LINK_SALT).unsign(token, max_age=ORDER_LINK_MAX_AGE)
    except signing.BadSignature:
        return False
    return value == str(order.id)


def order_link(order: Order) -> str:
    """The order page, reachable without signing in (guests) through a signed token."""
    return f"{reverse('orders:detail', kwargs={'number': order.number})}?t={order_access_token(order)}"
