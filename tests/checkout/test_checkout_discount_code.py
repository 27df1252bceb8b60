"""A discount code applied or removed at checkout keeps every field typed so far, and Pay charges
the figures of the page that came back (follow-up of issue 21)."""

from decimal import Decimal
from html import unescape

import pytest
from djmoney.money import Money

from cart.models import Cart
from discounts.models import DiscountCode, DiscountKind
from orders.models import Order
from tests.checkout.test_checkout_totals import FORM, checkout_url, figures_of, ny_rate, pay  # noqa: F401  (fixture)
from tests.orders.conftest import attach_to_session, make_cart

pytestmark = pytest.mark.django_db

TYPED = ("name", "line1", "line2", "city", "zip_code")


def assert_fields_kept(html: str) -> None:
    for name in TYPED:
        assert f'name="{name}" value="{FORM[name]}"' in html
    assert (
        f'name="email" value="{FORM["email"]}"' in html and '<option value="NY" selected>' in html
    )
    assert "This field is required" not in html


@pytest.fixture
def spring10(db):
    return DiscountCode.objects.create(
        code="SPRING10", kind=DiscountKind.PERCENT, value=Decimal("10")
    )


def test_applying_a_code_keeps_the_fields_and_pay_charges_the_discounted_total(
    client, localstripe, general_tier, ny_rate, spring10
):
    cart = make_cart(tier=general_tier, packages=1)
    attach_to_session(client, cart)
    response = client.post(checkout_url(), {**FORM, "code": "spring10", "apply_code": "1"})
    html = response.content.decode()
    assert response.status_code == 200 and "Code <strong>SPRING10</strong> applied." in html
    assert_fields_kept(html)
    # 12.00 − 1.20 = 10.80; shipping 9.95; tax 8.875%: 0.96 + 0.88; total 22.59.
    assert "Discount (SPRING10)" in html and "Total: <strong>$22.59</strong>" in html
    assert Cart.objects.get(pk=cart.pk).discount_code == "SPRING10"
    assert pay(client, figures_of(html)).status_code == 200
    assert Order.objects.get().total == Money("22.59", "USD")


def test_an_unknown_code_says_why_and_keeps_the_fields(client, general_tier, ny_rate):
    attach_to_session(client, make_cart(tier=general_tier, packages=1))
    response = client.post(checkout_url(), {**FORM, "code": "NOSUCH", "apply_code": "1"})
    html = response.content.decode()
    # The apostrophe as the page writes it (Jinja2 escapes it as &#39;, Django as &#x27;).
    assert response.status_code == 400 and "We don't know the code NOSUCH." in unescape(html)
    assert_fields_kept(html)
    assert "Total: <strong>$23.90</strong>" in html and not Order.objects.exists()


def test_removing_the_code_keeps_the_fields_and_the_full_total(
    client, general_tier, ny_rate, spring10
):
    cart = make_cart(tier=general_tier, packages=1)
    cart.discount_code = "SPRING10"
    cart.save()
    attach_to_session(client, cart)
    response = client.post(checkout_url(), {**FORM, "remove_code": "1"})
    html = response.content.decode()
    assert response.status_code == 200 and "Discount code removed." in html
    assert_fields_kept(html)
    assert "Discount (" not in html and "Total: <strong>$23.90</strong>" in html
    assert Cart.objects.get(pk=cart.pk).discount_code == ""


def test_enter_in_an_address_field_with_the_code_box_empty_updates_the_total(
    client, general_tier, ny_rate
):
    # Enter presses the form's first button, "Apply": with no code typed it is "Update total".
    attach_to_session(client, make_cart(tier=general_tier, packages=1))
    html = client.post(checkout_url(), {**FORM, "code": "", "apply_code": "1"}).content.decode()
    assert "Please enter a discount code" not in html and "Total: <strong>$23.90</strong>" in html
    assert_fields_kept(html)


# (A NUL is refused with its reason by the middleware, for every form.)
@pytest.mark.parametrize("code", ["ＳＰＲＩＮＧ１０", "x" * 500])
def test_a_hostile_code_is_refused_with_a_reason_and_the_fields_kept(
    client, general_tier, spring10, code
):
    attach_to_session(client, make_cart(tier=general_tier, packages=1))
    response = client.post(checkout_url(), {**FORM, "code": code, "apply_code": "1"})
    html = response.content.decode()
    assert response.status_code == 400 and "Please check it and try again." in html
    assert_fields_kept(html)
