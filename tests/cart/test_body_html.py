"""cart.body_html writes exactly what the cart body's templates wrote, for carts of every shape.

``reference/cart/_cart_body.html`` and ``reference/cart/_adjustments.html`` are the templates the
cart page used before the body was written in Python (issue #17); ``cart/_discount_form.html`` is
still the checkout page's. Hypothesis builds summaries of every shape (no lines, unavailable
lines, prescription items, savings, a code that applies or not, free shipping, problems, a flash
message or an alert), with text that must be escaped, and both must write the same bytes.
"""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.template import Context
from django.template.backends.django import DjangoTemplates
from django.utils.safestring import mark_safe
from djmoney.money import Money
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from cart.body_html import cart_body, discount_form

REFERENCE = Path(__file__).resolve().parent / "reference"
# The project's template settings, with the reference templates found first.
ENGINE = DjangoTemplates(
    {
        "NAME": "reference",
        "DIRS": [REFERENCE, *settings.TEMPLATES[0]["DIRS"]],
        "APP_DIRS": True,
        "OPTIONS": {"builtins": settings.TEMPLATES[0]["OPTIONS"]["builtins"]},
    }
).engine
TOKEN = "T" * 32 + "o" * 32

text = st.lists(st.sampled_from([*"ab <>&\"'é·—", "pills", "Ibuprofen"]), max_size=8).map("".join)
safe_money = st.sampled_from(["$1.00", "$12,345.67", "-$3.00", "€9.99", "$0.12345"]).map(mark_safe)
number = st.integers(min_value=0, max_value=2000).map(lambda n: mark_safe(str(n)))
slug = st.text(alphabet="abcxyz019-_", min_size=1, max_size=10)


def money(amount: st.SearchStrategy) -> st.SearchStrategy:
    return amount.map(lambda a: Money(Decimal(a), "USD"))


line = st.fixed_dictionaries(
    {
        "line_id": number,
        "product_name": text,
        "product_slug": slug,
        "strength": text,
        "pack_size": number,
        "packages": st.sampled_from([mark_safe("1"), mark_safe("2"), mark_safe("10")]),
        "pills": number,
        "unit_price": safe_money,
        "per_pill": safe_money,
        "list_price": safe_money,
        "savings_per_package": safe_money,
        "savings_percent": number,
        "line_total": safe_money,
        "requires_prescription": st.booleans(),
        "notice": st.one_of(st.just(""), text),
        "available": st.booleans(),
        "shows_saving": st.booleans(),
    }
)


@st.composite
def carts(draw):
    lines = draw(st.lists(line, max_size=3))
    item_count = draw(st.integers(min_value=0, max_value=3)) if lines else 0
    code_applies = draw(st.booleans())
    code = draw(text)
    totals = SimpleNamespace(
        discount=draw(money(st.sampled_from(["0", "2.50"]))),
        discount_code=code if code_applies else "",
        shipping_waived=draw(st.booleans()),
    )
    problems = draw(st.lists(text, max_size=2))
    summary = SimpleNamespace(
        lines=tuple(lines),
        item_count=item_count,
        is_empty=item_count == 0,
        can_checkout=item_count > 0 and not problems,
        has_prescription_items=draw(st.booleans()),
        savings=draw(money(st.sampled_from(["0", "4.00"]))),
        shipping=draw(money(st.sampled_from(["0", "5.99"]))),
        free_shipping_remaining=draw(money(st.sampled_from(["0", "10.01"]))),
        problems=tuple(problems),
        entered_code=draw(st.one_of(st.just(""), st.just(code))),
        totals=totals,
    )
    shown_totals = {
        name: draw(safe_money)
        for name in ("subtotal", "savings", "shipping", "total", "free_shipping_threshold", "free_shipping_remaining")
    }
    shown_totals["item_count"] = mark_safe(str(item_count))
    return {
        "summary": summary,
        "shown_lines": lines,
        "shown_totals": shown_totals,
        "max_packages": mark_safe("10"),
        "flash": draw(st.one_of(st.just(""), text)),
        "flash_error": draw(st.booleans()),
        "alert": draw(st.one_of(st.just(""), text)),
    }


def reference(name: str, context: dict) -> str:
    return ENGINE.get_template(name).render(Context({**context, "csrf_token": TOKEN}))


@hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cart=carts())
def test_the_cart_body_is_what_the_template_wrote(cart):
    assert cart_body(csrf_token=TOKEN, **cart) == reference("cart/_cart_body.html", cart)


@pytest.mark.parametrize("entered, applies", [("", False), ("SPRING<10>", True), ("OLD&CODE", False)])
def test_the_discount_form_is_the_checkout_template(entered, applies):
    summary = SimpleNamespace(entered_code=entered, totals=SimpleNamespace(discount_code=entered if applies else ""))
    csrf_input = f'<input type="hidden" name="csrfmiddlewaretoken" value="{TOKEN}">'
    expected = reference("cart/_discount_form.html", {"summary": summary, "next": "/checkout/?a=1&b=<2>"})
    assert discount_form(summary=summary, next_url="/checkout/?a=1&b=<2>", csrf_input=csrf_input) == expected


def test_a_line_shows_what_the_customer_chose_and_the_forms_carry_the_token():
    """Not only equal to the old template: the markup a customer and a no-JS form rely on."""
    cart = {
        "summary": SimpleNamespace(
            lines=("x",), item_count=2, is_empty=False, can_checkout=True, has_prescription_items=True,
            savings=Money("4.00", "USD"), shipping=Money("0", "USD"), free_shipping_remaining=Money("0", "USD"),
            problems=(), entered_code="", totals=SimpleNamespace(discount=Money("0", "USD"), discount_code="", shipping_waived=False),
        ),
        "shown_lines": [{
            "line_id": mark_safe("7"), "product_name": "Baclofen <b>", "product_slug": "baclofen", "strength": "10mg",
            "pack_size": mark_safe("90"), "packages": mark_safe("2"), "pills": mark_safe("180"),
            "unit_price": mark_safe("$39.60"), "per_pill": mark_safe("$0.44"), "list_price": mark_safe("$54.00"),
            "savings_per_package": mark_safe("$14.40"), "savings_percent": mark_safe("27"), "line_total": mark_safe("$79.20"),
            "requires_prescription": True, "notice": "", "available": True, "shows_saving": True,
        }],
        "shown_totals": {"item_count": mark_safe("2"), "subtotal": mark_safe("$79.20"), "savings": mark_safe("$28.80"),
                         "shipping": mark_safe("$0.00"), "total": mark_safe("$79.20"),
                         "free_shipping_threshold": mark_safe("$50.00"), "free_shipping_remaining": mark_safe("$0.00")},
        "max_packages": mark_safe("10"),
    }
    html = cart_body(csrf_token=TOKEN, **cart)
    assert "Baclofen &lt;b&gt;" in html and "<b>" not in html
    assert '<a href="/products/baclofen/">' in html
    assert html.count(f'name="csrfmiddlewaretoken" value="{TOKEN}"') == 3  # update, remove, discount code
    assert 'value="2" min="1" max="10"' in html and "2 packs, 180 pills" in html
    assert "Prescription required" in html and "About prescription items" in html
    assert '<a class="button cart-checkout" href="/checkout/">Checkout</a>' in html
