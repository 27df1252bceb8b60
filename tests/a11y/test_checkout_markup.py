"""Checkout markup a screen reader relies on, and the card wording for the cart at hand."""

import re

import pytest
from django.urls import reverse

from catalog.models import PackageTier
from tests.catalog.html import parse
from tests.e2e.conftest import general_product  # noqa: F401  (a general-sale medicine)


def add(client, tier: PackageTier):
    response = client.post(reverse("cart:add"), {"tier_id": tier.pk, "packages": 1})
    assert response.status_code in (200, 302, 303)


def checkout_page(client):
    response = client.get(reverse("checkout:checkout"))
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def rx_tier(baclofen) -> PackageTier:
    return PackageTier.objects.get(dosage__product=baclofen, dosage__strength="10mg", quantity=90)


@pytest.mark.django_db
def test_every_aria_describedby_points_at_an_element_of_the_page(client, rx_tier):
    add(client, rx_tier)
    html = checkout_page(client)
    doc = parse(html)
    ids = {node.attrs["id"] for node in doc.iter() if node.attrs.get("id")}
    pointed = [
        ref for node in doc.iter() for ref in (node.attrs.get("aria-describedby") or "").split()
    ]
    assert (
        len(pointed) >= 10
    )  # the address fields, the patient fields, the prescription choice, the card
    assert [ref for ref in pointed if ref not in ids] == []


@pytest.mark.django_db
def test_radio_choices_are_fieldsets_with_a_legend_not_list_items(client, rx_tier):
    add(client, rx_tier)
    html = checkout_page(client)
    assert 'role="radiogroup"' not in html
    doc = parse(html)
    radios = [
        node for node in doc.iter() if node.tag == "input" and node.attrs.get("type") == "radio"
    ]
    assert {r.attrs["name"] for r in radios} == {"shipping_method", f"rx_{rx_tier.pk}_method"}
    for radio in radios:
        parent = radio.parent
        while parent is not None and parent.tag != "fieldset":
            assert parent.tag != "li"
            parent = parent.parent
        assert parent is not None and parent.children and parent.find("legend") is not None
    # The two ways to give the prescription are labelled, so both make sense when shown together (no CSS).
    step = doc.find("fieldset", cls="prescription-item")
    assert [t.text for t in step.find_all("p", cls="rx-option-title")] == [
        "If you upload a copy",
        "If we get it from your prescriber",
    ]


@pytest.mark.django_db
def test_a_general_sale_cart_is_told_its_card_is_charged_now(client, general_product):
    add(client, general_product.dosages.get().tiers.get())
    text = re.sub(r"\s+", " ", parse(checkout_page(client)).find("form", id="checkout-form").text)
    assert "Your card is charged when you place the order." in text
    assert "authorised now" not in text and "hold" not in text


@pytest.mark.django_db
def test_a_prescription_cart_is_told_its_card_is_held_until_approval(client, rx_tier):
    add(client, rx_tier)
    text = re.sub(r"\s+", " ", parse(checkout_page(client)).find("form", id="checkout-form").text)
    assert (
        "Your card is authorised now and charged only when our pharmacist approves your prescription."
        in text
    )
    assert "charged when you place the order" not in text


@pytest.mark.django_db
def test_the_order_summary_comes_before_the_pay_button(client, rx_tier):
    add(client, rx_tier)
    html = checkout_page(client)
    assert html.index('id="summary-title"') < html.index('id="pay-button"')
    assert "Total: <strong>$78.18</strong>" in html  # repeated next to Pay
