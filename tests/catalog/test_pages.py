"""The product page, home and SEO endpoints, as a customer (or a search engine) sees them."""

import json
import re
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from djmoney.money import Money

from catalog import page_cache
from catalog.models import FAQ, DosingGuideline, InfoSection, LegalClass, PackageTier, SafetyNote
from tests.catalog.html import parse
from tests.factories import CategoryFactory, DosageFactory, PackageTierFactory, ProductFactory

# Measured: product page 7 queries, home 2, listing 2 (anonymous visitor, cache miss; a card's
# price comes with its row). The headroom is for the cart helper's header context processor
# (session cart lookup).
PRODUCT_PAGE_BUDGET = 10
HOME_BUDGET = 4
LISTING_BUDGET = 5

MONEY_RE = re.compile(r"\$([\d,]+\.\d\d)")


def amounts(text: str) -> list[str]:
    return [m.replace(",", "") for m in MONEY_RE.findall(text)]


def price_tables(doc):
    return doc.find_all("table", cls="price-table")


def get_page(client, slug="baclofen"):
    return client.get(reverse("catalog:product_detail", kwargs={"slug": slug}))


# --- The reference page ---------------------------------------------------------------------


@pytest.mark.django_db
def test_baclofen_shows_every_golden_row_exactly(client, baclofen, golden):
    response = get_page(client)
    assert response.status_code == 200
    tables = price_tables(parse(response.content))
    assert len(tables) == len(golden["dosages"]) == 2

    for table, dosage in zip(tables, golden["dosages"], strict=True):
        assert table.find("caption").text.startswith(dosage["strength"])
        rows = table.find("tbody").find_all("tr")
        assert len(rows) == len(dosage["tiers"])
        for row, expected in zip(rows, dosage["tiers"], strict=True):
            assert row.find(cls="pack-qty").text == f"{expected['quantity']} pills"
            assert amounts(row.find("td", cls="col-per-pill").text) == [expected["per_pill"]]
            assert amounts(row.find("td", cls="col-price").text) == [expected["price"]]
            list_cell = row.find("td", cls="col-list")
            saving_cell = row.find("td", cls="col-saving")
            if expected["savings_percent"]:
                assert amounts(list_cell.find("del").text) == [expected["list_price"]]
                assert saving_cell.text == f"Save {expected['savings_percent']}%"
            else:
                # No saving: nothing struck through, no "Save 0%".
                assert list_cell.find("del") is None
                assert "Save" not in saving_cell.text
            has_badge = "Best per pill" in row.text
            assert has_badge == expected.get("best_per_pill", False)
        assert sum("Best per pill" in row.text for row in rows) == 1


@pytest.mark.django_db
def test_every_row_has_its_own_add_to_cart_form(client, baclofen):
    response = get_page(client)
    doc = parse(response.content)
    tiers = {
        (t.dosage.strength, t.quantity): t for t in PackageTier.objects.select_related("dosage")
    }
    cart_add = reverse("cart:add")
    seen = []
    for table in price_tables(doc):
        strength = table.find("caption").text.split()[0]
        for row in table.find("tbody").find_all("tr"):
            forms = row.find_all("form")
            assert len(forms) == 1
            form = forms[0]
            assert form.attrs["method"] == "post"
            assert form.attrs["action"] == cart_add
            assert form.attrs["hx-post"] == cart_add
            assert doc.find(id=form.attrs["hx-target"].removeprefix("#")) is not None
            assert form.find("input", name="csrfmiddlewaretoken", type="hidden").attrs["value"]
            quantity = int(row.find(cls="pack-qty").text.split()[0])
            tier = tiers[(strength, quantity)]
            assert form.find("input", name="tier_id", type="hidden").attrs["value"] == str(tier.pk)
            assert form.find("input", name="packages", type="hidden").attrs["value"] == "1"
            button = form.find("button", type="submit")
            # WCAG 2.5.3: the accessible name (the button's whole text, no aria-label overriding it)
            # starts with the visible words; the pack details follow, hidden from the eye only.
            assert "aria-label" not in button.attrs
            hidden = button.find("span", cls="visually-hidden")
            assert [part for part in button.children if isinstance(part, str)] == ["Add to cart"]
            assert button.children[-1] is hidden
            assert hidden.text == f"(Baclofen {strength}, {quantity} pills)"
            seen.append(tier.pk)
    assert sorted(seen) == sorted(tiers[k].pk for k in tiers)


@pytest.mark.django_db
def test_the_add_to_cart_form_posts_without_javascript(client, baclofen):
    """The plain form post reaches the cart view with a valid CSRF token."""
    client.handler.enforce_csrf_checks = True
    doc = parse(get_page(client).content)
    form = doc.find("form", cls="add-to-cart")
    data = {i.attrs["name"]: i.attrs["value"] for i in form.find_all("input")}
    response = client.post(form.attrs["action"], data, HTTP_REFERER="/products/baclofen/")
    assert response.status_code in (200, 302, 303)


@pytest.mark.django_db
def test_prescription_badge_and_how_it_works(client, baclofen):
    doc = parse(get_page(client).content)
    header = doc.find("header", cls="product-header")
    assert header.find(cls="badge-rx").text == "Prescription required"
    explainer = header.find(id="rx-explainer").text
    assert "pharmacist verifies your prescription before the card is charged" in explainer
    assert (
        "baclofen" in header.text.lower() and "Tablet" in header.text and "Generic" in header.text
    )


@pytest.mark.django_db
def test_over_the_counter_product_has_no_prescription_badge(client):
    tier = PackageTierFactory(dosage__product__legal_class=LegalClass.GENERAL_SALE)
    doc = parse(get_page(client, tier.dosage.product.slug).content)
    assert doc.find(cls="badge-rx") is None
    assert doc.find(cls="badge-general").text == "No prescription needed"
    assert len(doc.find_all("form", cls="add-to-cart")) == 1


@pytest.mark.django_db
def test_controlled_substance_is_information_only(client):
    tier = PackageTierFactory(
        dosage__product__name="Oxycodone",
        dosage__product__slug="oxycodone",
        dosage__product__legal_class=LegalClass.CONTROLLED,
    )
    response = get_page(client, "oxycodone")
    assert response.status_code == 200
    doc = parse(response.content)
    assert "Not available for online order" in doc.find("main").text
    assert doc.find_all("form", action=reverse("cart:add")) == []
    assert 'name="tier_id"' not in response.content.decode()
    assert price_tables(doc) == []
    assert str(tier.price.amount) not in doc.find("main").text
    data = json.loads(doc.find("script", type="application/ld+json").text)
    assert "offers" not in data


@pytest.mark.django_db
def test_inactive_tier_is_hidden_and_best_is_recomputed(client, baclofen):
    # The 360-pill pack is the best 10mg pack; without it, 270 pills is.
    PackageTier.objects.filter(dosage__strength="10mg", quantity=360).update(is_active=False)
    doc = parse(get_page(client).content)
    table = price_tables(doc)[0]
    quantities = [row.find(cls="pack-qty").text for row in table.find("tbody").find_all("tr")]
    assert quantities == ["60 pills", "90 pills", "120 pills", "180 pills", "270 pills"]
    best = [row for row in table.find("tbody").find_all("tr") if "Best per pill" in row.text]
    assert [row.find(cls="pack-qty").text for row in best] == ["270 pills"]


@pytest.mark.django_db
def test_rows_follow_tier_position_not_quantity(client):
    dosage = DosageFactory()
    for position, quantity in enumerate([90, 30, 60]):
        PackageTierFactory(
            dosage=dosage, quantity=quantity, position=position, price=Money(quantity, "USD")
        )
    doc = parse(get_page(client, dosage.product.slug).content)
    rows = price_tables(doc)[0].find("tbody").find_all("tr")
    assert [r.find(cls="pack-qty").text for r in rows] == ["90 pills", "30 pills", "60 pills"]


@pytest.mark.django_db
def test_dosage_without_active_tier_is_left_out(client, baclofen):
    PackageTier.objects.filter(dosage__strength="25mg").update(is_active=False)
    doc = parse(get_page(client).content)
    captions = [t.find("caption").text.split()[0] for t in price_tables(doc)]
    assert captions == ["10mg"]


@pytest.mark.django_db
def test_product_without_active_tiers_is_currently_unavailable(client, baclofen):
    PackageTier.objects.update(is_active=False)
    response = get_page(client)
    assert response.status_code == 200
    doc = parse(response.content)
    assert "currently unavailable" in doc.find(id="prices").text
    assert doc.find_all("form", cls="add-to-cart") == []
    assert "offers" not in json.loads(doc.find("script", type="application/ld+json").text)


@pytest.mark.django_db
def test_out_of_stock_pack_cannot_be_added(client, baclofen):
    PackageTier.objects.filter(dosage__strength="25mg", quantity=30).update(stock=0)
    doc = parse(get_page(client).content)
    row = price_tables(doc)[1].find("tbody").find_all("tr")[0]
    assert row.find("form") is None
    assert "Out of stock" in row.text
    assert len(doc.find_all("form", cls="add-to-cart")) == 11


@pytest.mark.django_db
def test_unpublished_product_is_404(client, baclofen):
    baclofen.is_published = False
    baclofen.save()
    assert get_page(client).status_code == 404


@pytest.mark.django_db
def test_unknown_product_is_404(client):
    assert get_page(client, "no-such-medicine").status_code == 404


@pytest.mark.django_db
def test_price_change_shows_on_the_next_page_load(client, baclofen):
    """Product pages are never cached: an admin's price change is visible at once."""
    assert "$68.23" in get_page(client).content.decode()
    PackageTier.objects.filter(dosage__strength="10mg", quantity=90).update(price=Decimal("66.00"))
    body = get_page(client).content.decode()
    assert "$68.23" not in body and "$66.00" in body


# --- Patient information --------------------------------------------------------------------


@pytest.mark.django_db
def test_patient_information_sections_and_table_of_contents(client, baclofen):
    intro = InfoSection.objects.create(
        product=baclofen,
        heading="What baclofen is",
        body="First paragraph.\n\nSecond paragraph.",
        position=0,
    )
    DosingGuideline.objects.create(
        product=baclofen,
        indication="Spasticity",
        starting_dose="5 mg three times a day",
        titration="Increase by 15 mg a day every 3 days",
        maximum_dose="80 mg a day",
        administration="With food",
    )
    SafetyNote.objects.create(
        product=baclofen, kind=SafetyNote.Kind.CONTRAINDICATION, title="Allergy to baclofen"
    )
    SafetyNote.objects.create(
        product=baclofen, kind=SafetyNote.Kind.INTERACTION, title="Alcohol", detail="More drowsy."
    )
    SafetyNote.objects.create(
        product=baclofen, kind=SafetyNote.Kind.SIDE_EFFECT, title="Drowsiness"
    )
    FAQ.objects.create(
        product=baclofen, question="Can I stop suddenly?", answer="No. Reduce slowly."
    )

    doc = parse(get_page(client).content)
    toc_links = [a.attrs["href"] for a in doc.find("nav", cls="toc").find_all("a")]
    assert toc_links == [
        f"#info-{intro.pk}",
        "#dosing",
        "#contraindications",
        "#interactions",
        "#side-effects",
        "#faq",
    ]
    for href in toc_links:
        section = doc.find(id=href[1:])
        assert section is not None and section.find("h3") is not None

    paragraphs = [p.text for p in doc.find(id=f"info-{intro.pk}").find_all("p")]
    assert paragraphs == ["First paragraph.", "Second paragraph."]

    dosing = doc.find(id="dosing").find("table")
    headers = [th.text for th in dosing.find("thead").find_all("th")]
    assert headers == ["Indication", "Starting dose", "Titration", "Maximum dose", "How to take it"]
    assert all(th.attrs.get("scope") == "col" for th in dosing.find("thead").find_all("th"))
    row = dosing.find("tbody").find("tr")
    assert row.find("th").attrs["scope"] == "row" and row.find("th").text == "Spasticity"
    assert [td.text for td in row.find_all("td")][2] == "80 mg a day"

    assert "Allergy to baclofen" in doc.find(id="contraindications").text
    assert "More drowsy." in doc.find(id="interactions").text
    assert "Drowsiness" in doc.find(id="side-effects").text
    faq = doc.find(id="faq").find("details")
    assert faq.find("summary").text == "Can I stop suddenly?" and "Reduce slowly." in faq.text


@pytest.mark.django_db
def test_empty_patient_information_sections_are_left_out(client, baclofen):
    doc = parse(get_page(client).content)
    assert doc.find("nav", cls="toc") is None
    assert doc.find(id="faq") is None


# --- SEO --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_meta_description_and_canonical(client, baclofen, settings):
    settings.SITE_URL = "https://shop.example"
    doc = parse(get_page(client).content)
    assert (
        doc.find("meta", name="description").attrs["content"] == "A muscle relaxant for spasticity."
    )
    assert (
        doc.find("link", rel="canonical").attrs["href"] == "https://shop.example/products/baclofen/"
    )


@pytest.mark.django_db
def test_json_ld_describes_the_drug_and_its_offers(client, baclofen, golden):
    doc = parse(get_page(client).content)
    scripts = doc.find_all("script", type="application/ld+json")
    assert len(scripts) == 1
    data = json.loads(scripts[0].text)
    assert data["@type"] == ["Drug", "Product"]
    assert data["name"] == "Baclofen" and data["prescriptionStatus"] == "PrescriptionOnly"
    offers = data["offers"]
    prices = [Decimal(t["price"]) for d in golden["dosages"] for t in d["tiers"]]
    assert offers["@type"] == "AggregateOffer" and offers["priceCurrency"] == "USD"
    assert Decimal(offers["lowPrice"]) == min(prices) == Decimal("52.18")
    assert Decimal(offers["highPrice"]) == max(prices) == Decimal("499.70")
    assert offers["offerCount"] == 12 == len(offers["offers"])
    assert {Decimal(o["price"]) for o in offers["offers"]} == set(prices)
    assert [s["strengthValue"] for s in data["availableStrength"]] == ["10", "25"]


@pytest.mark.django_db
def test_json_ld_cannot_break_out_of_its_script(client, baclofen):
    baclofen.summary = 'Relaxes </script><script>alert("x")</script> & <!-- muscles'
    baclofen.save()
    body = get_page(client).content.decode()
    block = body.split('<script type="application/ld+json">', 1)[1].split("</script>", 1)[0]
    assert "<" not in block and ">" not in block and "&" not in block
    assert json.loads(block)["description"] == baclofen.summary


@pytest.mark.django_db
def test_sitemap_lists_published_products_only(client, baclofen):
    hidden = ProductFactory(slug="draft-medicine", is_published=False)
    response = client.get("/sitemap.xml")
    assert response.status_code == 200
    body = response.content.decode()
    assert "/products/baclofen/</loc>" in body
    assert f"/products/{hidden.slug}/" not in body
    assert "/products/</loc>" in body


@pytest.mark.django_db
def test_robots_txt_points_at_the_sitemap(client):
    response = client.get("/robots.txt")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    body = response.content.decode()
    assert "Sitemap: http://testserver/sitemap.xml" in body and "Disallow: /cart/" in body


# --- Home ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_home_shows_categories_featured_products_and_search(client, baclofen):
    baclofen.is_featured = True
    baclofen.save()
    ProductFactory(name="Not featured")
    CategoryFactory(name="Empty shelf", slug="empty-shelf")
    doc = parse(client.get("/").content)
    main = doc.find("main")
    category_names = [
        a.find(cls="category-name").text for a in main.find_all("a", cls="category-tile")
    ]
    assert "Muscle and joint" in category_names and "Empty shelf" not in category_names
    cards = [a.text for a in main.find_all("h3", cls="product-card-title")]
    assert cards == ["Baclofen"]
    assert "from $0.61 per pill" in main.find("article", cls="product-card").text
    search = main.find("form", role="search")
    assert search.attrs["action"] == reverse("catalog:product_list") and search.find(
        "input", name="q"
    )


# --- Query budgets ------------------------------------------------------------------------------


def build_product(*, slug: str, dosages: int, tiers: int, category=None):
    product = ProductFactory(
        slug=slug, name=slug.title(), category=category or CategoryFactory(), is_featured=True
    )
    for d in range(dosages):
        dosage = DosageFactory(
            product=product, strength=f"{5 * (d + 1)}mg", strength_value=Decimal(5 * (d + 1))
        )
        for t in range(tiers):
            PackageTierFactory(
                dosage=dosage, quantity=30 * (t + 1), price=Money(20 + 25 * t, "USD"), position=t
            )
    InfoSection.objects.create(product=product, heading="About", body="Text.")
    DosingGuideline.objects.create(product=product, indication="Pain", starting_dose="1 a day")
    SafetyNote.objects.create(product=product, kind=SafetyNote.Kind.SIDE_EFFECT, title="Nausea")
    FAQ.objects.create(product=product, question="Q?", answer="A.")
    return product


def count_queries(client, url: str) -> int:
    """Queries of the page rendered afresh (a page-cache miss; hits are pinned in test_cache.py)."""
    cache.clear()
    page_cache._local_pages.clear()  # and this process's copies
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)


@pytest.mark.django_db
def test_product_page_query_budget_does_not_grow(client, django_assert_max_num_queries):
    small = build_product(slug="small", dosages=2, tiers=3)
    large = build_product(slug="large", dosages=8, tiers=10)
    for product in (small, large):
        with django_assert_max_num_queries(PRODUCT_PAGE_BUDGET):
            response = get_page(client, product.slug)
        assert response.status_code == 200
    assert len(price_tables(parse(get_page(client, "large").content))) == 8
    assert count_queries(client, "/products/small/") == count_queries(client, "/products/large/")


@pytest.mark.django_db
def test_listing_query_budget_does_not_grow(client, django_assert_max_num_queries):
    category = CategoryFactory()
    for i in range(3):
        build_product(slug=f"few-{i}", dosages=2, tiers=3, category=category)
    with django_assert_max_num_queries(LISTING_BUDGET):
        assert client.get("/products/").status_code == 200
    few = count_queries(client, "/products/")
    for i in range(37):
        build_product(slug=f"many-{i:02d}", dosages=2, tiers=3, category=category)
    with django_assert_max_num_queries(LISTING_BUDGET):
        response = client.get("/products/")
    assert len(parse(response.content).find_all("article", cls="product-card")) == 24
    assert count_queries(client, "/products/") == few
    assert count_queries(client, "/products/?page=2") == few


@pytest.mark.django_db
def test_home_query_budget_does_not_grow(client, django_assert_max_num_queries):
    for i in range(3):
        build_product(slug=f"few-{i}", dosages=2, tiers=3)
    with django_assert_max_num_queries(HOME_BUDGET):
        assert client.get("/").status_code == 200
    few = count_queries(client, "/")
    for i in range(12):
        build_product(slug=f"many-{i:02d}", dosages=3, tiers=4)
    with django_assert_max_num_queries(HOME_BUDGET):
        assert client.get("/").status_code == 200
    assert count_queries(client, "/") == few


@pytest.mark.django_db
def test_budgets_hold_for_a_signed_in_customer_with_a_cart(
    client, customer, django_assert_max_num_queries
):
    """The header's cart count and the session cost the same on every page, whatever the catalogue size."""
    small = build_product(slug="small", dosages=2, tiers=3)
    build_product(slug="large", dosages=8, tiers=10)
    client.force_login(customer)
    tier = small.dosages.first().tiers.first()
    client.post(reverse("cart:add"), {"tier_id": tier.pk, "packages": 1})
    for url, budget in [
        ("/products/small/", PRODUCT_PAGE_BUDGET),
        ("/products/large/", PRODUCT_PAGE_BUDGET),
        ("/products/", LISTING_BUDGET),
        ("/", HOME_BUDGET),
    ]:
        with django_assert_max_num_queries(
            budget + 2
        ):  # + session and user lookups of a signed-in visitor
            assert client.get(url).status_code == 200
    assert count_queries(client, "/products/small/") == count_queries(client, "/products/large/")
