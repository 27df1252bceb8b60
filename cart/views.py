"""Cart pages and actions. Thin: the services decide, these views only talk HTTP.

Every action is a POST (CSRF-protected). Without JavaScript it redirects back (PRG) with a
message. With htmx (a non-boosted ``HX-Request``) it answers with a fragment: the confirmation
or error text for the element that asked, plus an out-of-band swap of ``#header-cart`` so the
header count updates in place.

htmx errors are answered with **status 400** (404 for a line that is not in the visitor's
cart) and an error fragment (``role="alert"``); ``templates/base.html`` configures htmx to swap
400 and 404 answers, which it does not by default. The error fragment has the same shape as the
confirmation, so the caller's own ``hx-target``/``hx-swap`` shows it; ``HX-Reswap`` is set to
the request's ``hx-swap`` choice only when a caller sends one in ``HX-Cart-Swap`` (rarely
needed), and ``HX-Trigger: cart-error`` lets a page react further. Without htmx, errors
redirect back with an error message, and a line that is not in the visitor's cart gets a 404 page.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponseRedirect
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from pharmacy.redirects import safe_next

from .presentation import number_html, shown_lines, shown_totals
from .pricing import cart_summary
from .services import (
    CartError,
    CartLineNotFound,
    cart_add_tier_for_request,
    cart_and_lines_for_request,
    cart_apply_discount_code,
    cart_for_request,
    cart_remove_discount_code,
    cart_remove_line,
    cart_set_packages,
)


def _is_htmx(request) -> bool:
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.boosted


def _back_url(request) -> str:
    """Where to return after a POST: a safe ``next`` field, the referring page, or the cart."""
    return safe_next(
        request,
        request.POST.get("next"),
        request.META.get("HTTP_REFERER"),
        default=reverse("cart:detail"),
    )


def _detail_context(request, summary, *, flash="", flash_error: bool = False, alert="") -> dict:
    """The cart's body (``cart/_cart_body.html``, Jinja2: the page's hottest markup) and the
    header's count, from one summary.

    The CSRF token is masked once (a fresh random mask each time it is asked for) and shared by
    the body's forms and the layout's htmx header.
    """
    csrf_token = get_token(request)
    body = {
        "summary": summary,
        "shown_lines": shown_lines(summary.lines),
        "shown_totals": shown_totals(summary),
        "max_packages": number_html(settings.CART_MAX_PACKAGES_PER_LINE),
        "flash": flash,
        "flash_error": flash_error,
        "alert": alert,
        "page_csrf_token": csrf_token,
    }
    html = render_to_string("cart/_cart_body.html", body, request, using="pages")
    return {
        "cart_body": mark_safe(html),  # our own template's output, escaped by it
        "cart_count": summary.item_count,
        "csrf_token": csrf_token,  # in place of the context processor's own (a second mask)
    }


def _fragment(
    request, *, message: str, error: bool, status: int | None = None, with_cart: bool = False
):
    if status is None:
        status = 400 if error else 200
    context = {"message": message, "error": error}
    template = "cart/_feedback.html"
    if with_cart:
        cart = cart_for_request(request, create=False)
        context.update(
            _detail_context(request, cart_summary(cart), flash=message, flash_error=error)
        )
        template = "cart/_cart_body_response.html"
    response = render(request, template, context, status=status)
    if error:
        response["HX-Trigger"] = "cart-error"
        swap = request.headers.get("HX-Cart-Swap")
        if swap:
            response["HX-Reswap"] = swap
    return response


def _error_without_js(request, exc: CartError, *, back: str):
    if isinstance(exc, CartLineNotFound):
        cart = cart_for_request(request, create=False)
        summary = cart_summary(cart)
        return _cart_page(request, summary, alert=exc.message, status=404)
    messages.error(request, exc.message)
    return HttpResponseRedirect(back)


@never_cache  # the visitor's own medicines
@require_safe
def cart_detail(request):
    cart, lines = cart_and_lines_for_request(request)
    summary = cart_summary(cart, lines=lines)
    # The header count comes from the summary already loaded: no extra query on this page.
    return _cart_page(request, summary)


def _cart_page(request, summary, *, alert="", status: int = 200):
    """The cart page; the header's count comes from the same summary (no second query)."""
    return render(
        request,
        "cart/cart_detail.html",
        _detail_context(request, summary, alert=alert),
        status=status,
    )


def _answer(request, action, *, back: str, with_cart: bool = False):
    """Run a cart action and answer it: a fragment for htmx, otherwise a message and a redirect."""
    try:
        change = action()
    except CartError as exc:
        if _is_htmx(request):
            status = 404 if isinstance(exc, CartLineNotFound) else 400
            return _fragment(
                request, message=exc.message, error=True, status=status, with_cart=with_cart
            )
        return _error_without_js(request, exc, back=back)
    if _is_htmx(request):
        return _fragment(request, message=change.message, error=False, with_cart=with_cart)
    messages.success(request, change.message)
    return HttpResponseRedirect(back)


@never_cache
@require_POST
def cart_add(request):
    return _answer(
        request,
        lambda: cart_add_tier_for_request(
            request=request,
            tier_id=request.POST.get("tier_id"),
            packages=request.POST.get("packages") or 1,
        ),
        back=_back_url(request),
    )


@never_cache
@require_POST
def cart_update(request):
    cart = cart_for_request(request, create=False)
    return _answer(
        request,
        lambda: cart_set_packages(
            cart=cart, line_id=request.POST.get("line_id"), packages=request.POST.get("packages")
        ),
        back=reverse("cart:detail"),
        with_cart=True,
    )


@never_cache
@require_POST
def cart_remove(request):
    cart = cart_for_request(request, create=False)
    return _answer(
        request,
        lambda: cart_remove_line(cart=cart, line_id=request.POST.get("line_id")),
        back=reverse("cart:detail"),
        with_cart=True,
    )


@require_POST
def cart_discount_apply(request):
    """Enter a discount code (from the cart or the checkout page: ``next`` says where to return)."""
    cart = cart_for_request(request, create=False)
    return _answer(
        request,
        lambda: cart_apply_discount_code(cart=cart, code=request.POST.get("code")),
        back=_back_url(request),
    )


@require_POST
def cart_discount_remove(request):
    cart = cart_for_request(request, create=False)
    return _answer(request, lambda: cart_remove_discount_code(cart=cart), back=_back_url(request))
