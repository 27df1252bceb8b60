"""The header's cart count: lazy, and at most one query, whose SQL is built once per process."""

from django.utils.functional import SimpleLazyObject, new_method_proxy

from catalog.models import LegalClass
from pharmacy.prepared import PreparedQuery

from .models import CartLine
from .services import SESSION_CART_ID


def _orderable_lines():
    return (
        CartLine.objects.filter(tier__is_active=True, tier__dosage__product__is_published=True)
        .exclude(tier__dosage__product__legal_class=LegalClass.CONTROLLED)
        .exclude(tier__stock=0)
        .only("packages")
    )


# Every signed-in page with a cart asked Django to build this query afresh, at many times the CPU
# PostgreSQL needs to answer it: a large share of a cached catalog page for a customer.
_CUSTOMER_CART_LINES = PreparedQuery(
    lambda cart_id, user_id: _orderable_lines().filter(cart_id=cart_id, cart__user_id=user_id),
    "cart_id",
    "user_id",
)
_GUEST_CART_LINES = PreparedQuery(
    lambda cart_id: _orderable_lines().filter(cart_id=cart_id, cart__user__isnull=True), "cart_id"
)


def cart_count_for_request(request) -> int:
    """Packages in the visitor's cart that can be ordered (the figure ``cart_summary`` counts).

    No query when the session holds no cart id; otherwise one.
    """
    cart_id = request.session.get(SESSION_CART_ID) if hasattr(request, "session") else None
    if type(cart_id) is not int:  # what the session stores; a bool is not a cart id
        return 0
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        # Signing in points the session at the customer's cart (``cart_merge_into_user``).
        lines = _CUSTOMER_CART_LINES(cart_id=cart_id, user_id=user.pk)
    else:
        lines = _GUEST_CART_LINES(cart_id=cart_id)
    return sum(line.packages for line in lines)


class LazyCount(SimpleLazyObject):
    """Counted on first use, and usable as a number by template filters (``pluralize`` calls
    ``float()``, which a plain ``SimpleLazyObject`` does not pass on: "1 item" came out as "1 ")."""

    __int__ = new_method_proxy(int)
    __float__ = new_method_proxy(float)


def cart(request) -> dict:
    return {"cart_count": LazyCount(lambda: cart_count_for_request(request))}
