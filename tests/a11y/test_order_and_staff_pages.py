"""The order page follows the order's state, the receipt prints, and pharmacists find their work."""

import re
from collections import Counter

import pytest
from django.template.loader import render_to_string
from django.test import Client
from django.urls import reverse

from catalog.models import PackageTier
from orders import services
from prescriptions import decisions as prescription_decisions
from tests.catalog.html import parse
from tests.e2e.conftest import general_product  # noqa: F401
from tests.factories import UserFactory
from tests.localstripe import CARD_OK, browser_confirm
from tests.orders.conftest import make_cart, place
from tests.prescriptions.prescription_support import authorise, make_pharmacist, place_rx

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def rx_tier(baclofen) -> PackageTier:
    return PackageTier.objects.get(dosage__product=baclofen, dosage__strength="10mg", quantity=90)


def rx_order(localstripe, tier, packages=1):
    return authorise(
        localstripe, place_rx(make_cart(tier=tier, packages=packages), tier=tier, with_file=False)
    )


def page_of(client, order):
    response = client.get(services.order_link(order))
    assert response.status_code == 200
    doc = parse(response.content)
    return response, doc.find(id="order-headline").text, doc.find("ol", id="order-timeline").text


def test_order_page_heading_and_timeline_follow_the_review(client, localstripe, rx_tier):
    pharmacist = make_pharmacist()
    order = rx_order(localstripe, rx_tier)
    _, headline, timeline = page_of(client, order)
    assert headline == "Order received: awaiting pharmacist review" and "approved" not in timeline

    prescription_decisions.prescription_approve(order=order, by=pharmacist)
    response, headline, timeline = page_of(client, order)
    assert headline == "Approved and paid: being prepared for shipping"
    assert "Thank you, your order is placed" not in response.content.decode()
    assert (
        timeline.index("Awaiting pharmacist review")
        < timeline.index("Prescription approved by our pharmacist")
        < timeline.index("Payment: paid")
    )
    assert "no-store" in response["Cache-Control"]

    changed = rx_order(localstripe, rx_tier, packages=2)
    line = changed.lines.get()
    prescription_decisions.prescription_approve_with_changes(
        order=changed, by=pharmacist, approved_packages={line.pk: 1}, note="One pack prescribed."
    )
    _, headline, timeline = page_of(client, changed)
    assert headline == "Approved with changes and paid: being prepared for shipping"
    assert "Prescription approved with changes" in timeline

    rejected = rx_order(localstripe, rx_tier)
    prescription_decisions.prescription_reject(
        order=rejected, by=pharmacist, reason="Expired prescription."
    )
    _, headline, timeline = page_of(client, rejected)
    assert headline == "Not approved" and "Prescription not approved" in timeline


def test_a_paid_order_links_a_printable_receipt_and_the_email_does_too(
    client, localstripe, general_product
):
    order = place(make_cart(tier=general_product.dosages.get().tiers.get())).order
    browser_confirm(
        base=localstripe.base, intent_id=order.stripe_payment_intent_id, card_number=CARD_OK
    )
    services.order_sync_payment(order_id=order.pk)
    _, headline, _ = page_of(client, order)
    assert headline == "Paid: being prepared for shipping"
    doc = parse(client.get(services.order_link(order)).content)
    receipt_url = doc.find("a", id="receipt-link").attrs["href"]
    receipt = client.get(receipt_url)
    assert receipt.status_code == 200 and "no-store" in receipt["Cache-Control"]
    page = parse(receipt.content)
    assert page.find(id="receipt-order-number").text == str(order.number)
    assert page.find(id="receipt-paid").text == "$21.95"  # $12.00 pack + $9.95 shipping
    assert (
        '<button type="button" data-print>Print or save as PDF</button>' in receipt.content.decode()
    )
    # Without the signed link (and not the owner) there is no receipt.
    assert (
        Client().get(reverse("orders:receipt", kwargs={"number": order.number})).status_code == 404
    )

    # The receipt email points at the same printable page (the signed link, plus /receipt/).
    link = "https://shop.example" + services.order_link(order)
    for name in ("emails/payment_captured.txt", "emails/payment_captured.html"):
        body = render_to_string(name, {"order": order, "order_url": link})
        assert f"https://shop.example/orders/{order.number}/receipt/?t=" in body
        assert "download" not in body


def test_pharmacists_see_the_review_queue_link_with_its_count(
    client, localstripe, rx_tier, django_assert_max_num_queries
):
    rx_order(localstripe, rx_tier)
    rx_order(localstripe, rx_tier)
    pharmacist = make_pharmacist()
    client.force_login(pharmacist)
    home = parse(client.get("/").content)
    assert home.find("a", id="header-review").text == "Review queue 2 orders waiting"
    from django.contrib.auth import get_user_model

    client.force_login(
        get_user_model().objects.create_superuser(
            email="boss@example.com", password="x-long-enough-1"
        )
    )
    admin = client.get(reverse("admin:index")).content.decode()
    assert 'id="admin-review-link"' in admin and "2 orders waiting" in admin
    any_order = services.Order.objects.first()
    change = client.get(reverse("admin:orders_order_change", args=[any_order.pk])).content.decode()
    assert reverse("prescriptions:review_queue") in change and "2 orders waiting" in change

    customer = Client()
    customer.force_login(UserFactory())
    assert parse(customer.get("/").content).find("a", id="header-review") is None
    with django_assert_max_num_queries(
        2
    ):  # anonymous: no staff lookups at all (home: its own 2 queries)
        Client().get("/")


def test_review_page_ids_are_unique_and_words_are_formatted(client, localstripe, rx_tier):
    order = rx_order(localstripe, rx_tier)
    client.force_login(make_pharmacist())
    html = client.get(
        reverse("prescriptions:review_order", kwargs={"number": order.number})
    ).content.decode()
    doc = parse(html)
    ids = Counter(node.attrs["id"] for node in doc.iter() if node.attrs.get("id"))
    assert [i for i, n in ids.items() if n > 1] == []
    for label in doc.find_all("label"):
        assert doc.find(id=label.attrs["for"]) is not None
    history = doc.find("main").text
    assert "awaiting_review" not in history and "pending_payment" not in history
    assert "Awaiting payment → Awaiting pharmacist review" in history
    assert "$ " not in history and "$78.18" in history
    assert re.search(r'<a class="nowrap" href="tel:\+15185550101">\(518\) 555-0101</a>', html)
    assert doc.find(id="header-cart") is None
    # The approval names what it captures (the server's figure) before the pharmacist confirms.
    assert doc.find(id="capture-text").text == "Will capture $78.18 of the $78.18 held."
    assert doc.find(id="approve-submit").text == "Approve and charge $78.18"
