"""Home and listing: named search landmarks, products before categories, search heading, sort."""

import pytest
from djmoney.money import Money

from tests.catalog.html import parse
from tests.factories import DosageFactory, PackageTierFactory, ProductFactory


@pytest.mark.django_db
def test_home_names_each_search_form_and_shows_products_before_categories(client, baclofen):
    html = client.get("/").content.decode()
    doc = parse(html)
    searches = [form.attrs.get("aria-label") for form in doc.find_all("form", role="search")]
    assert len(searches) == 2 and None not in searches and len(set(searches)) == 2
    if 'id="featured-title"' in html:
        assert html.index('id="featured-title"') < html.index('id="categories-title"')


@pytest.mark.django_db
def test_search_heading_says_what_was_searched_and_sort_by_price_per_pill(client):
    for name, price in (
        ("Alpha pain relief", "30.00"),
        ("Beta pain relief", "3.00"),
        ("Gamma pain relief", "12.00"),
    ):
        product = ProductFactory(name=name, indications="pain")
        PackageTierFactory(
            dosage=DosageFactory(product=product), quantity=30, price=Money(price, "USD")
        )
    doc = parse(client.get("/products/?q=pain").content)
    assert doc.find("h1").text == "Search results for “pain”"
    names = [a.text for a in doc.find_all("h3", cls="product-card-title")]
    assert names == ["Alpha pain relief", "Beta pain relief", "Gamma pain relief"]
    doc = parse(client.get("/products/?q=pain&sort=price").content)
    names = [a.text for a in doc.find_all("h3", cls="product-card-title")]
    assert names == ["Beta pain relief", "Gamma pain relief", "Alpha pain relief"]
    assert doc.find("option", value="price").attrs.get(
        "selected"
    ) is not None or 'value="price" selected' in str(
        client.get("/products/?q=pain&sort=price").content
    )
    assert client.get("/products/?sort=nonsense").status_code == 200


@pytest.mark.django_db
def test_admin_pack_boxes_are_named_and_admin_pages_have_a_favicon(client, baclofen):
    from django.contrib.auth import get_user_model
    from django.urls import reverse

    client.force_login(
        get_user_model().objects.create_superuser(
            email="boss@example.com", password="x-long-enough-1"
        )
    )
    dosage = baclofen.dosages.order_by("pk").first()
    html = client.get(reverse("admin:catalog_dosage_change", args=[dosage.pk])).content.decode()
    doc = parse(html)
    assert doc.find("link", rel="icon") is not None
    group = doc.find(id="tiers-group")
    boxes = [
        i
        for i in group.iter()
        if i.tag in ("input", "select") and i.attrs.get("type") not in ("hidden",)
    ]
    assert len(boxes) >= 6 * 4  # quantity, price, SKU, active, position, stock on six packs
    labels = {label.attrs.get("for") for label in group.find_all("label")}
    unnamed = [
        b.attrs.get("name")
        for b in boxes
        if not b.attrs.get("aria-label") and b.attrs.get("id") not in labels
    ]
    assert unnamed == []
    names = {b.attrs.get("aria-label") for b in boxes}
    assert {"Quantity", "Price", "SKU"} <= {n for n in names if n} or "Price" in str(names)
