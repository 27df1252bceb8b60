"""The cart body (``#cart-body``: lines, totals, discount code), written in Python.

Why not a template: the cart page is per customer, so it cannot be cached, and the template
engine was a third of its cost (issue #17): about 80 variable lookups, ``{% url %}`` and
``{% csrf_token %}`` tags, filters and three includes for a one-line cart, ~2,000 Python calls
per request; written here it is a few dozen string joins. The markup is exactly what
``cart/_cart_body.html`` wrote (with ``cart/_adjustments.html`` and ``cart/_discount_form.html``);
``tests/cart/test_body_html.py`` keeps that template and compares the two for carts of every
shape (empty, unavailable lines, prescription items, savings, codes, problems, messages), with
the escaping the template engine applies. URLs are ``{% url %}``'s remembered answers. The
checkout page still includes ``cart/_discount_form.html``; the same test pins ``discount_form`` to it.

Input is what the template had: the ``CartSummary`` and its lines and totals already printed by
``cart.presentation`` (``shown_lines``, ``shown_totals``: money and numbers as ``SafeString``).
"""
from __future__ import annotations

from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe

from catalog.pricing import format_money
from pharmacy.template_url import remembered_reverse as reverse


RX_EXPLAINER = """
    <aside class="cart-rx-explainer" aria-labelledby="rx-heading">
      <h2 id="rx-heading">About prescription items</h2>
      <p>Items marked “Prescription required” are dispensed only after one of our pharmacists has checked a valid prescription from your prescriber. At checkout your card is only authorised, not charged; we charge it once the pharmacist approves the prescription, and release the hold if we cannot dispense.</p>
    </aside>
    """


def e(value) -> str:
    """What ``{{ value }}`` writes under autoescape (``SafeString`` as it is)."""
    return conditional_escape(value)


def _plural(count) -> str:
    """The ``pluralize`` filter's "s" for a count (1 alone is singular)."""
    try:
        return "" if float(count) == 1 else "s"
    except (TypeError, ValueError):
        return ""


def _csrf_input(token: str) -> str:
    return f'<input type="hidden" name="csrfmiddlewaretoken" value="{e(token)}">' if token else ""


def discount_form(*, summary, next_url: str, csrf_input: str) -> str:
    """``cart/_discount_form.html``: enter a code, or remove the one entered."""
    out = ['\n<section class="discount-code" aria-labelledby="discount-heading">\n  <h3 id="discount-heading">Discount code</h3>\n  ']
    if summary.entered_code:
        applied = " applied" if summary.totals.discount_code else " cannot be used on this order"
        out.append(
            f'\n    <form method="post" action="{e(reverse("cart:discount_remove"))}">{csrf_input}\n'
            f'      <input type="hidden" name="next" value="{e(next_url)}">\n'
            f"      <p>Code <strong>{e(summary.entered_code)}</strong>{applied}.\n"
            '        <button type="submit" class="link-button">Remove code</button></p>\n'
            "    </form>\n  "
        )
    else:
        out.append(
            f'\n    <form method="post" action="{e(reverse("cart:discount_apply"))}">{csrf_input}\n'
            f'      <input type="hidden" name="next" value="{e(next_url)}">\n'
            '      <label for="discount-code-input">Code</label>\n'
            '      <input id="discount-code-input" name="code" maxlength="40" autocomplete="off" autocapitalize="characters">\n'
            '      <button type="submit">Apply</button>\n'
            "    </form>\n  "
        )
    out.append("\n</section>\n")
    return "".join(out)


def _adjustments(summary) -> str:
    """``cart/_adjustments.html``: the discount and sales-tax rows of the totals."""
    totals = summary.totals
    out = ["\n"]
    if totals.discount.amount:
        out.append(
            f'<div class="cart-discount"><dt>Discount ({e(totals.discount_code)})</dt>'
            f"<dd>-{e(format_money(totals.discount))}</dd></div>"
        )
    out.append("\n")
    if totals.shipping_waived:
        out.append(f'<div class="cart-discount"><dt>Free shipping ({e(totals.discount_code)})</dt><dd>Applied</dd></div>')
    out.append("\n")
    if not summary.is_empty:
        out.append('<div class="cart-tax"><dt>Sales tax</dt><dd>At checkout, for your shipping state</dd></div>')
    out.append("\n")
    return "".join(out)


def _line(line: dict, *, product_url, update_url: str, remove_url: str, csrf_input: str, max_packages: str) -> str:
    available = line["available"]
    line_id = line["line_id"]
    pack = f"{line['pack_size']} pills per pack"
    if available:
        pack += f" · {line['packages']} pack{_plural(line['packages'])}, {line['pills']} pills"
    rx = '<p class="cart-rx"><span class="badge-rx">Prescription required</span></p>' if line["requires_prescription"] else ""
    notice = ""
    if line["notice"]:
        unavailable = "" if available else " cart-notice-unavailable"
        notice = f'<p class="cart-notice{unavailable}" role="note">{e(line["notice"])}</p>'
    shows_saving = line["shows_saving"]
    list_price = (
        f' <s class="list-price"><span class="visually-hidden">list price </span>{e(line["list_price"])}</s>'
        if shows_saving
        else ""
    )
    saving = (
        f'<div><dt>You save</dt><dd class="saving">{e(line["savings_per_package"])} per pack'
        f' ({e(line["savings_percent"])}%)</dd></div>'
        if shows_saving
        else ""
    )
    total = e(line["line_total"]) if available else "Not included"
    name, strength = e(line["product_name"]), e(line["strength"])
    return (
        f'\n      <li class="cart-line{"" if available else " cart-line-unavailable"}" id="cart-line-{line_id}">\n'
        '        <div class="cart-line-product">\n'
        f'          <h2 class="cart-line-name"><a href="{e(product_url(line["product_slug"]))}">{name}</a>'
        f' <span class="cart-line-strength">{strength}</span></h2>\n'
        f'          <p class="cart-line-pack">{pack}</p>\n'
        f"          {rx}\n"
        f"          {notice}\n"
        "        </div>\n"
        '        <dl class="cart-line-prices">\n'
        f'          <div><dt>Price per pack</dt><dd>{e(line["unit_price"])}{list_price}</dd></div>\n'
        f'          <div><dt>Per pill</dt><dd>{e(line["per_pill"])}</dd></div>\n'
        f"          {saving}\n"
        f'          <div class="cart-line-total"><dt>Line total</dt><dd>{total}</dd></div>\n'
        "        </dl>\n"
        '        <div class="cart-line-actions">\n'
        f'          <form class="cart-update" method="post" action="{update_url}" hx-post="{update_url}" hx-target="#cart-body" hx-swap="outerHTML">\n'
        f"            {csrf_input}\n"
        f'            <input type="hidden" name="line_id" value="{line_id}">\n'
        f'            <label for="packages-{line_id}">Packs</label>\n'
        f'            <input id="packages-{line_id}" type="number" name="packages" value="{line["packages"]}" min="1"'
        f' max="{max_packages}" step="1" inputmode="numeric" required>\n'
        '            <button type="submit" class="button-secondary">Update</button>\n'
        "          </form>\n"
        f'          <form class="cart-remove" method="post" action="{remove_url}" hx-post="{remove_url}" hx-target="#cart-body" hx-swap="outerHTML">\n'
        f"            {csrf_input}\n"
        f'            <input type="hidden" name="line_id" value="{line_id}">\n'
        '            <button type="submit" class="button-link">Remove<span class="visually-hidden">'
        f' {name} {strength}, {line["pack_size"]} pills</span></button>\n'
        "          </form>\n"
        "        </div>\n"
        "      </li>\n      "
    )


def _product_url(slug: str) -> str:
    return reverse("catalog:product_detail", slug=slug)


def cart_body(
    *,
    csrf_token: str,
    summary,
    shown_lines: list[dict],
    shown_totals: dict,
    max_packages: str,
    flash="",
    flash_error: bool = False,
    alert="",
) -> SafeString:
    """``#cart-body``: what ``{% include "cart/_cart_body.html" %}`` wrote.

    ``csrf_token``: the request's (``django.middleware.csrf.get_token``), the one every form of
    the body carries, as ``{% csrf_token %}`` took it from the page's context.
    """
    checkout_url = e(reverse("orders:checkout"))
    update_url, remove_url = e(reverse("cart:update")), e(reverse("cart:remove"))
    out = ['\n<div id="cart-body" class="cart-body">\n  ']
    if flash:
        kind, role = ("message-error", "alert") if flash_error else ("message-success", "status")
        out.append(f'<div class="messages cart-message"><p class="message {kind}" role="{role}">{e(flash)}</p></div>')
    out.append("\n  ")
    if alert:
        out.append(f'<div class="messages cart-message"><p class="message message-error" role="alert">{e(alert)}</p></div>')
    out.append("\n  ")
    if not summary.lines:
        out.append(
            '\n    <section class="cart-empty">\n      <p>Your cart is empty.</p>\n'
            f'      <p><a class="button" href="{e(reverse("catalog:product_list"))}">Browse medicines</a></p>\n'
            "    </section>\n  "
        )
        out.append("\n</div>\n")
        return mark_safe("".join(out))  # noqa: S308 - every value escaped above

    csrf_input = _csrf_input(csrf_token)
    totals = shown_totals
    count_plural = _plural(summary.item_count)
    next_step = (
        f'<a class="button cart-topbar-checkout" href="{checkout_url}">Checkout</a>'
        if summary.can_checkout
        else '<a href="#totals-heading">What to fix first</a>'
    )
    out.append(
        "\n    \n"
        '    <div class="cart-topbar">\n'
        f'      <p class="cart-topbar-total">Total <strong>{e(totals["total"])}</strong> <span class="muted">'
        f'({e(totals["item_count"])} pack{count_plural})</span></p>\n'
        f"      {next_step}\n"
        "    </div>\n"
        '    <ul class="cart-lines" aria-label="Items in your cart">\n      '
    )
    product_url = _product_url
    max_packages = e(max_packages)
    for line in shown_lines:
        out.append(
            _line(line, product_url=product_url, update_url=update_url, remove_url=remove_url,
                  csrf_input=csrf_input, max_packages=max_packages)
        )
    out.append("\n    </ul>\n\n    ")
    if summary.has_prescription_items:
        out.append(RX_EXPLAINER)
    out.append(
        "\n\n"
        '    <section class="cart-totals" aria-labelledby="totals-heading">\n'
        '      <h2 id="totals-heading" class="visually-hidden">Order summary</h2>\n'
        "      <dl>\n"
        f'        <div><dt>Subtotal ({e(totals["item_count"])} pack{count_plural})</dt><dd>{e(totals["subtotal"])}</dd></div>\n'
        "        "
    )
    if summary.savings.amount:
        out.append(f'<div class="saving"><dt>Your savings against list prices</dt><dd>{e(totals["savings"])}</dd></div>')
    out.append("\n        ")
    out.append(_adjustments(summary))
    if summary.is_empty:
        shipping = "—"
    elif summary.shipping.amount:
        shipping = e(totals["shipping"])
    else:
        shipping = "Free"
    out.append(
        "\n"
        f"        <div><dt>Shipping</dt><dd>{shipping}</dd></div>\n"
        f'        <div class="cart-grand-total"><dt>Total</dt><dd>{e(totals["total"])}</dd></div>\n'
        "      </dl>\n      "
    )
    if not summary.is_empty:
        if summary.free_shipping_remaining.amount:
            out.append(
                f'\n        \n          <p class="cart-shipping-note">Spend {e(totals["free_shipping_remaining"])} more for free shipping'
                f' (free on orders of {e(totals["free_shipping_threshold"])} or more).</p>\n        \n      '
            )
        else:
            out.append('\n        \n          <p class="cart-shipping-note">Your order qualifies for free shipping.</p>\n        \n      ')
    out.append("\n      ")
    if summary.problems:
        problems = "".join(f"<li>{e(problem)}</li>" for problem in summary.problems)
        out.append(
            '\n      <div class="cart-problems" role="alert">\n'
            "        <p>Before you can check out:</p>\n"
            f"        <ul>{problems}</ul>\n"
            "      </div>\n      "
        )
    out.append("\n      ")
    if summary.can_checkout:
        out.append(f'\n        <p><a class="button cart-checkout" href="{checkout_url}">Checkout</a></p>\n      ')
    elif summary.is_empty:
        out.append('\n        <p class="cart-checkout-disabled">Nothing in your cart can be ordered at the moment.</p>\n      ')
    out.append("\n      ")
    if not summary.is_empty:
        out.append(discount_form(summary=summary, next_url=reverse("cart:detail"), csrf_input=csrf_input))
    out.append(
        f'\n      <p><a href="{e(reverse("catalog:product_list"))}">Continue shopping</a></p>\n'
        "    </section>\n  "
    )
    out.append("\n</div>\n")
    return mark_safe("".join(out))  # noqa: S308 - every value escaped above

