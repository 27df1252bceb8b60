"""Links to an order: the signed token that opens an order's page without signing in.

Its own small module because the order's pages, its emails (``orders.emails``) and the account
pages all need it, and none of them should import the checkout services for it.

The link stands in for a password on a page with health data, so it is kept short-lived
(``ORDER_LINK_MAX_AGE_DAYS``, a week by default: emails are kept for years, the link must not
be) and it stops opening the order once the order is in an account: from then on its owner signs
in to see it. Every email about the order carries a freshly signed link.
"""

from __future__ import annotations

import enum
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.urls import reverse

from .models import Order

ORDER_LINK_SALT = "orders.order-link"


class LinkState(enum.Enum):
    VALID = "valid"
    INVALID = (
        "invalid"  # forged, garbled or for another order: the page answers as if no such order
    )
    EXPIRED = "expired"  # genuine but older than the lifetime
    IN_ACCOUNT = "in_account"  # genuine, but the order is in an account now: its owner signs in


def order_link_max_age() -> timedelta:
    return timedelta(days=settings.ORDER_LINK_MAX_AGE_DAYS)


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=ORDER_LINK_SALT)


def order_access_token(order: Order) -> str:
    return _signer().sign(str(order.id))


def order_link_check(*, order: Order, token: str) -> LinkState:
    """What the token in an order link is worth for ``order`` now.

    A genuine link that is too old, or whose order is now in an account, is told apart from a
    bad one so the page can say what to do instead of "no such order"."""
    try:
        value = _signer().unsign(token or "")
    except signing.BadSignature:
        return LinkState.INVALID
    if value != str(order.id):
        return LinkState.INVALID
    try:
        _signer().unsign(token, max_age=order_link_max_age())
    except signing.SignatureExpired:
        return LinkState.EXPIRED
    if order.user_id is not None:
        return LinkState.IN_ACCOUNT
    return LinkState.VALID


def order_token_is_valid(*, order: Order, token: str) -> bool:
    """Whether the link opens the order for whoever holds it (a guest order, link still fresh)."""
    return order_link_check(order=order, token=token) is LinkState.VALID


def order_link(order: Order) -> str:
    """The order page, reachable without signing in (guests) through a signed token."""
    return (
        f"{reverse('orders:detail', kwargs={'number': order.number})}?t={order_access_token(order)}"
    )
