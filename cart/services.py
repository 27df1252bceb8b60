"""Cart workflows: finding the customer's cart and changing what is in it.

Every change runs in a transaction that first locks the cart row, so two requests changing the
same cart (a double click, two tabs) are applied one after the other and the per-line and
per-product limits are checked against what is really there. Bad input raises ``CartError``
with a message fit to show the customer; nothing is written in that case.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from catalog.models import PackageTier
from discounts.services import DiscountRefused, discount_terms_for
from pharmacy.prepared import PreparedQuery

from . import rules
from .models import Cart, CartLine
from .pricing import PRICING_RELATED

logger = logging.getLogger(__name__)

SESSION_CART_ID = "cart_id"


class CartError(ValueError):
    """A change to the cart that cannot be made; ``message`` is shown to the customer."""

    status_code = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class CartLineNotFound(CartError):
    """The line is not in this customer's cart (or does not exist): treated as a 404."""

    status_code = 404

    def __init__(self, message: str = "That item was not found in your cart."):
        super().__init__(message)


@dataclass(frozen=True)
class CartChange:
    """What a service did, for the view's confirmation message."""

    line: CartLine | None
    message: str


# --- Finding the cart -------------------------------------------------------------------------


def _session_key(request, *, create: bool) -> str | None:
    session = request.session
    if session.session_key is None and create:
        session.save()
    return session.session_key


def cart_for_request(request, *, create: bool) -> Cart | None:
    """The signed-in customer's cart, or the anonymous session's cart.

    The cart id is kept in the (database-backed) session, so the cart survives restarts and is
    found by any web process; ``Cart.session_key`` is kept current so abandoned anonymous carts
    can be expired. With ``create=False`` nothing is written and ``None`` means "no cart yet".
    """
    return _find_or_create_cart(request, create=create)[0]


def cart_and_lines_for_request(
    request, *, select_related: tuple[str, ...] = ()
) -> tuple[Cart | None, list[CartLine]]:
    """``cart_for_request(request, create=False)`` and its lines for ``cart_summary(cart, lines=…)``.

    One query when the cart has lines: the lines with their cart, pack, dosage and product (and
    ``select_related``'s relations, e.g. the checkout's refill links), in cart order, the SQL
    built once per process (``pharmacy.prepared``). An empty or missing cart costs a second
    query, for the cart itself. For pages that only read the cart (the cart and checkout pages):
    the lines are as they were when read.
    """
    user = getattr(request, "user", None)
    lines: list[CartLine] = []
    if user is not None and user.is_authenticated:
        lines = _lines_with_cart(signed_in=True, select_related=select_related)(user_id=user.pk)
    else:
        cart_id = request.session.get(SESSION_CART_ID)
        if type(cart_id) is int:  # what the session stores; anything else takes the long way
            lines = _lines_with_cart(signed_in=False, select_related=select_related)(
                cart_id=cart_id
            )
    if not lines:
        return cart_for_request(request, create=False), []
    cart = lines[0].cart
    for line in lines[1:]:
        line.cart = cart  # one cart object, as the ORM's lines of a cart would share
    return _find_or_create_cart(request, create=False, found=cart)[0], lines


_LINES_WITH_CART: dict[tuple[bool, tuple[str, ...]], PreparedQuery] = {}


def _lines_with_cart(*, signed_in: bool, select_related: tuple[str, ...]) -> PreparedQuery:
    """The request's cart lines with the cart: the customer's, or the anonymous session's cart."""
    key = (signed_in, select_related)
    query = _LINES_WITH_CART.get(key)
    if query is None:
        related = ("cart", PRICING_RELATED, *select_related)
        if signed_in:
            query = PreparedQuery(
                lambda user_id: (
                    CartLine.objects.filter(cart__user_id=user_id)
                    .select_related(*related)
                    .order_by("added_at", "id")
                ),
                "user_id",
            )
        else:
            query = PreparedQuery(
                lambda cart_id: (
                    CartLine.objects.filter(cart_id=cart_id, cart__user__isnull=True)
                    .select_related(*related)
                    .order_by("added_at", "id")
                ),
                "cart_id",
            )
        _LINES_WITH_CART[key] = query
    return query


def _find_or_create_cart(
    request, *, create: bool, found: Cart | None = None
) -> tuple[Cart | None, bool]:
    """``cart_for_request`` that also tells whether the cart was created by this call.

    A cart created here has no lines yet, which spares the add-to-cart its line lookup.
    ``found``: the request's cart, already read (with its lines); only the session is updated.
    """
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        cart = found or Cart.objects.filter(user=user).first()
        created = False
        if cart is None and create:
            try:
                with transaction.atomic():
                    cart = Cart.objects.create(user=user)
                created = True
            except IntegrityError:  # created by a simultaneous request
                cart = Cart.objects.get(user=user)
        if cart is not None and request.session.get(SESSION_CART_ID) != cart.pk:
            request.session[SESSION_CART_ID] = cart.pk
        return cart, created

    cart_id = request.session.get(SESSION_CART_ID)
    cart = found
    if cart is None and cart_id is not None:
        cart = Cart.objects.filter(pk=cart_id, user__isnull=True).first()
        if cart is None:
            request.session.pop(SESSION_CART_ID, None)
    if cart is None and not create:
        return None, False
    new_session = request.session.session_key is None
    session_key = _session_key(request, create=True)
    created = False
    if cart is None and new_session:
        # The session store has just made this key up (checking it is unused), so no cart can
        # hold it yet: a plain insert, without get_or_create's lookup and transaction.
        cart = Cart.objects.create(session_key=session_key)
        created = True
        request.session[SESSION_CART_ID] = cart.pk
    elif cart is None:
        cart, created = Cart.objects.get_or_create(session_key=session_key, user=None)
        request.session[SESSION_CART_ID] = cart.pk
    elif cart.session_key != session_key and session_key is not None:
        # The session key was cycled (Django does so on some security events): follow it, so
        # expiry is measured against the live session.
        Cart.objects.filter(session_key=session_key, user__isnull=True).exclude(pk=cart.pk).delete()
        cart.session_key = session_key
        cart.save(update_fields=["session_key", "updated_at"])
    return cart, created


# --- Input parsing ----------------------------------------------------------------------------


_INTEGER = re.compile(r"[+-]?[0-9]{1,12}")


def _parse_int(value, *, error: str) -> int:
    if isinstance(value, bool):
        raise CartError(error)
    if isinstance(value, int):
        return value
    text = str(value if value is not None else "").strip()
    # ASCII digits only: str.isdigit() also accepts "²" or "٣", which int() then refuses.
    if not _INTEGER.fullmatch(text):
        raise CartError(error)
    return int(text)


def parse_packages(value) -> int:
    """A number of packages from a form: a whole number from 1 to the per-line maximum."""
    maximum = settings.CART_MAX_PACKAGES_PER_LINE
    error = f"Please choose a number of packages from 1 to {maximum}."
    packages = _parse_int(value, error=error)
    if packages < 1 or packages > maximum:
        raise CartError(error)
    return packages


def _parse_id(value, *, error: str) -> int:
    ident = _parse_int(value, error=error)
    if ident < 1:
        raise CartError(error)
    return ident


# --- Limits -----------------------------------------------------------------------------------


def _orderable_tier(tier_id) -> PackageTier:
    tier_pk = _parse_id(tier_id, error="Please choose a pack to add.")
    tier = PackageTier.objects.select_related("dosage__product").filter(pk=tier_pk).first()
    if tier is None:
        raise CartError("That pack was not found; it may have been withdrawn.")
    _refuse_unorderable(tier)
    return tier


def _refuse_unorderable(tier: PackageTier) -> None:
    """Controlled, withdrawn or sold-out packs cannot be added or increased (``cart.rules``)."""
    refusal = rules.unorderable_refusal(tier)
    if refusal:
        raise CartError(refusal)


def _check_line_limits(
    *,
    cart: Cart,
    tier: PackageTier,
    packages: int,
    line_id: int | None,
    product_lines: list[CartLine] | None = None,
) -> None:
    """Refuse the change if the cart it would make breaks a rule of ``cart.rules``.

    Only the lines of the tier's product can be affected by a change to one of its lines, so
    those are what is checked (``product_lines`` when the caller already has them, tiers loaded).
    """
    product = tier.dosage.product
    if product.max_pills_per_order is None:
        others: list[CartLine] = []
    else:
        if product_lines is None:
            product_lines = _product_lines(cart=cart, product_id=product.pk)
        others = [line for line in product_lines if line.pk != line_id and line.tier_id != tier.pk]
    proposed = [(line.tier, line.packages) for line in others] + [(tier, packages)]
    # Another line's own trouble (its stock sold meanwhile) is the cart page's to report, not a
    # reason to refuse this change.
    breaches = [
        b
        for b in rules.check(proposed)
        if b.kind == "pills_per_order" or b.subject == rules.label(tier)
    ]
    if breaches:
        raise CartError(breaches[0].message(proposed=True))


def _product_lines(*, cart: Cart, product_id: int) -> list[CartLine]:
    return list(
        CartLine.objects.filter(cart=cart, tier__dosage__product_id=product_id).select_related(
            "tier__dosage__product"
        )
    )


def _lock(cart: Cart) -> Cart:
    return Cart.objects.select_for_update().get(pk=cart.pk)


def _touch(cart: Cart) -> None:
    Cart.objects.filter(pk=cart.pk).update(updated_at=timezone.now())


def _line_label(line: CartLine) -> str:
    tier = line.tier
    return f"{tier.dosage.product.name} {tier.dosage.strength}, {tier.quantity} pills"


# --- Changing the cart ------------------------------------------------------------------------


def cart_add_tier(*, cart: Cart, tier_id, packages=1) -> CartChange:
    """Add packages of a tier; adding a tier already in the cart adds to that line.

    The price is always the tier's current price (a posted price is never read); it is kept on
    the line only to tell the customer later if it changes.
    """
    packages = parse_packages(packages)
    tier = _orderable_tier(tier_id)
    return _add_to_cart(cart=cart, tier=tier, packages=packages)


def _add_to_cart(
    *, cart: Cart, tier: PackageTier, packages: int, cart_is_new: bool = False
) -> CartChange:
    """``cart_add_tier`` once the input is parsed and the tier loaded and found orderable.

    The cart's lines are read once, under the cart lock: only the line of this tier, or all the
    lines of its product when the product has a pill limit (the limit needs them, and the line
    is among them). A cart created in this request has none, so they are not read at all. The
    cart row is locked in every case: a signed-in customer's new cart is visible to their other
    tabs as soon as it is committed.
    """
    product = tier.dosage.product
    with transaction.atomic():
        _lock(cart)
        if cart_is_new:
            product_lines: list[CartLine] = []
        elif product.max_pills_per_order is None:
            product_lines = list(CartLine.objects.filter(cart=cart, tier=tier))
        else:
            product_lines = _product_lines(cart=cart, product_id=product.pk)
        line = next(
            (candidate for candidate in product_lines if candidate.tier_id == tier.pk), None
        )
        new_total = packages + (line.packages if line else 0)
        _check_line_limits(
            cart=cart,
            tier=tier,
            packages=new_total,
            line_id=line.pk if line else None,
            product_lines=product_lines,
        )
        if line is None:
            try:
                with transaction.atomic():
                    line = CartLine.objects.create(
                        cart=cart, tier=tier, packages=packages, price_when_added=tier.price
                    )
            except IntegrityError:
                # Only possible without the row lock (e.g. a cart created in this very instant).
                line = CartLine.objects.select_for_update().get(cart=cart, tier=tier)
                _check_line_limits(
                    cart=cart, tier=tier, packages=line.packages + packages, line_id=line.pk
                )
                line.packages += packages
                line.save(update_fields=["packages"])
        else:
            line.packages = new_total
            line.save(update_fields=["packages"])
        if not cart_is_new:  # a cart inserted in this request already has a fresh updated_at
            _touch(cart)
    line.tier = tier
    label = _line_label(line)
    if packages == 1:
        message = f"Added {label} to your cart."
    else:
        message = f"Added {packages} packages of {label} to your cart."
    return CartChange(line=line, message=message)


def _line_pk(line_id) -> int:
    try:
        return _parse_id(line_id, error="")
    except CartError:
        raise CartLineNotFound() from None


def _own_line(*, cart: Cart, line_pk: int) -> CartLine:
    """The line, only if it belongs to this cart: another customer's line id is "not found"."""
    line = (
        CartLine.objects.select_related("tier__dosage__product")
        .filter(pk=line_pk, cart=cart)
        .first()
    )
    if line is None:
        raise CartLineNotFound()
    return line


def cart_set_packages(*, cart: Cart | None, line_id, packages) -> CartChange:
    """Set a line's number of packages (1 to the per-line maximum)."""
    line_pk = _line_pk(line_id)
    packages = parse_packages(packages)
    if cart is None:
        raise CartLineNotFound()
    with transaction.atomic():
        _lock(cart)
        line = _own_line(cart=cart, line_pk=line_pk)
        if packages > line.packages:
            # Lowering a quantity is always allowed, even for a line that is no longer
            # available; raising it has to respect every limit.
            _refuse_unorderable(line.tier)
            _check_line_limits(cart=cart, tier=line.tier, packages=packages, line_id=line.pk)
        line.packages = packages
        line.save(update_fields=["packages"])
        _touch(cart)
    return CartChange(line=line, message=f"Updated {_line_label(line)}: {packages} packages.")


def cart_remove_line(*, cart: Cart | None, line_id) -> CartChange:
    line_pk = _line_pk(line_id)
    if cart is None:
        raise CartLineNotFound()
    with transaction.atomic():
        _lock(cart)
        line = _own_line(cart=cart, line_pk=line_pk)
        label = _line_label(line)
        line.delete()
        _touch(cart)
    return CartChange(line=None, message=f"Removed {label} from your cart.")


def cart_clear(*, cart: Cart | None) -> None:
    """Empty the cart (after an order is placed from it)."""
    if cart is None:
        return
    with transaction.atomic():
        _lock(cart)
        CartLine.objects.filter(cart=cart).delete()
        _touch(cart)


def cart_remove_ordered(*, cart: Cart | None, ordered: Iterable[tuple[int, int]]) -> None:
    """Take out of the cart what an order was made of: ``(tier id, packages)`` pairs.

    Only those packs go: a line added (or packs added to a line) in another tab after the
    checkout page was opened stays in the cart for the next order.
    """
    if cart is None:
        return
    wanted: dict[int, int] = {}
    for tier_id, packages in ordered:
        wanted[tier_id] = wanted.get(tier_id, 0) + packages
    with transaction.atomic():
        _lock(cart)
        lines = list(
            CartLine.objects.filter(cart=cart, tier_id__in=wanted).only("pk", "tier_id", "packages")
        )
        gone = [line.pk for line in lines if line.packages <= wanted[line.tier_id]]
        left = [line for line in lines if line.packages > wanted[line.tier_id]]
        CartLine.objects.filter(pk__in=gone).delete()
        for line in left:
            CartLine.objects.filter(pk=line.pk).update(
                packages=line.packages - wanted[line.tier_id]
            )
        _touch(cart)


def cart_merge_into_user(*, request, user) -> list[str]:
    """Move the anonymous session cart into ``user``'s cart; call right after ``login()``.

    Same tier in both: packages are added, capped at the per-line maximum (and the product's
    pill limit is left to the cart page to flag). Returns messages for anything capped or
    dropped, and adds them to ``request`` via the messages framework when it is available.
    """
    cart_id = request.session.get(SESSION_CART_ID)
    notes: list[str] = []
    if cart_id is None:
        # Nothing to merge; remember the customer's own cart so the header can count it.
        own = Cart.objects.filter(user=user).values_list("pk", flat=True).first()
        if own is not None:
            request.session[SESSION_CART_ID] = own
        return notes
    maximum = settings.CART_MAX_PACKAGES_PER_LINE
    with transaction.atomic():
        anonymous = Cart.objects.select_for_update().filter(pk=cart_id, user__isnull=True).first()
        if anonymous is None:
            # Already the user's own cart, or gone: point the session at the user's cart.
            own = Cart.objects.filter(user=user).values_list("pk", flat=True).first()
            if own is None:
                request.session.pop(SESSION_CART_ID, None)
            else:
                request.session[SESSION_CART_ID] = own
            return notes
        target = Cart.objects.select_for_update().filter(user=user).first()
        if target is None:
            # Adopt the anonymous cart as the user's cart.
            anonymous.user = user
            anonymous.session_key = None
            anonymous.save(update_fields=["user", "session_key", "updated_at"])
            request.session[SESSION_CART_ID] = anonymous.pk
            return notes
        existing = {line.tier_id: line for line in CartLine.objects.filter(cart=target)}
        for line in CartLine.objects.filter(cart=anonymous).select_related("tier__dosage__product"):
            mine = existing.get(line.tier_id)
            if mine is None:
                CartLine.objects.filter(pk=line.pk).update(cart=target)
                continue
            wanted = mine.packages + line.packages
            if wanted > maximum:
                notes.append(
                    f"{_line_label(line)}: you can order at most {maximum} packages, so your cart now has {maximum}."
                )
            mine.packages = min(wanted, maximum)
            mine.save(update_fields=["packages"])
        anonymous.delete()
        _touch(target)
        request.session[SESSION_CART_ID] = target.pk
    if notes:
        try:
            from django.contrib import messages

            for note in notes:
                messages.warning(request, note)
        except Exception:  # a request without the messages middleware (e.g. a bare test request)
            logger.debug("cart merge messages not stored", exc_info=True)
    return notes


def carts_delete_expired(*, older_than: timedelta | None = None) -> int:
    """Delete anonymous carts untouched for ``older_than`` (default: the configured TTL).

    Customers' carts are kept: they belong to an account, not to a browser session.
    """
    if older_than is None:
        older_than = timedelta(days=settings.CART_ANONYMOUS_TTL_DAYS)
    cutoff = timezone.now() - older_than
    _, per_model = Cart.objects.filter(Q(user__isnull=True), updated_at__lt=cutoff).delete()
    return per_model.get(Cart._meta.label, 0)


def cart_add_tier_for_request(*, request, tier_id, packages=1) -> CartChange:
    """Validate first, then find or create the visitor's cart and add to it.

    Bad input therefore never leaves an empty cart (or a session) behind.
    """
    packages = parse_packages(packages)
    tier = _orderable_tier(tier_id)
    cart, created = _find_or_create_cart(request, create=True)
    return _add_to_cart(cart=cart, tier=tier, packages=packages, cart_is_new=created)


# --- Discount code ----------------------------------------------------------------------------


def cart_apply_discount_code(*, cart: Cart | None, code) -> CartChange:
    """Keep a discount code on the cart, or refuse it with the reason (unknown, not yet valid,
    expired, used up; not applicable to these items or below its minimum subtotal).

    The code is checked again every time the cart is priced, so a code that stops fitting the
    cart later shows as a problem on the cart page rather than vanishing.
    """
    from .pricing import cart_summary

    try:
        terms = discount_terms_for(code=str(code or ""))
    except DiscountRefused as refused:
        raise CartError(refused.message) from None
    if cart is None or not CartLine.objects.filter(cart_id=cart.pk).exists():
        raise CartError("Your cart is empty: add a medicine before entering a code.")
    with transaction.atomic():
        cart = _lock(cart)
        cart.discount_code = terms["code"]
        refusal = cart_summary(cart).totals.discount_refusal
        if refusal:
            raise CartError(refusal)
        cart.save(update_fields=["discount_code", "updated_at"])
    return CartChange(line=None, message=f"Code {terms['code']} applied.")


def cart_remove_discount_code(*, cart: Cart | None) -> CartChange:
    if cart is not None and cart.pk is not None:
        Cart.objects.filter(pk=cart.pk).update(discount_code="", updated_at=timezone.now())
    return CartChange(line=None, message="Discount code removed.")
