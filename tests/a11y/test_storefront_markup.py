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
    for name, price in (("Alpha pain relief", "30.00"), ("Beta pain relief", "3.00"), ("Gamma pain relief", "12.00")):
        product = ProductFactory(name=name, indications="pain")
        PackageTierFactory(dosage=DosageFactory(product=product), quantity=30, price=Money(price, "USD"))
    doc = parse(client.get("/products/?q=pain").content)
    assert doc.find("h1").text == "Search results for “pain”"
    names = [a.text for a in doc.find_all("h3", cls="product-card-title")]
    assert names == ["Alpha pain relief", "Beta pain relief", "Gamma pain relief"]
    doc = parse(client.get("/products/?q=pain&sort=price").content)
    names = [a.text for a in doc.find_all("h3", cls="product-card-title")]
    assert names == ["Beta pain relief", "Gamma pain relief", "Alpha pain relief"]
    assert doc.find("option", value="price").attrs.get("selected") is not None or 'value="price" selected' in str(
        client.get("/products/?q=pain&sort=price").content
    )
    assert client.get("/products/?sort=nonsense").status_code == 200
