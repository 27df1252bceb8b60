"""In headless Chromium: sign up, fill the cart, sign out, sign back in and find the cart."""
import pytest
from django.urls import reverse

from cart.models import CartLine

pytestmark = pytest.mark.e2e

STRONG = "Plum-orchard-1987-lantern"


@pytest.fixture
def browser_viewport() -> dict:
    return {"width": 390, "height": 844}


def _add(page, live_server, product, strength, quantity):
    page.goto(live_server.url + product.get_absolute_url())
    strengths = page.locator(".strength-options label").filter(has_text=strength)
    if strengths.count():  # several strengths: show the chosen one's packs
        strengths.first.click()
    # The add may be an htmx request: wait for its answer, not just for the page to be idle.
    with page.expect_response(lambda response: "/cart/add/" in response.url and response.request.method == "POST"):
        page.get_by_role("button", name=f"Add to cart ({product.name} {strength}, {quantity} pills)").click()
    page.wait_for_load_state("networkidle")


def test_account_journey_in_the_browser(live_server, transactional_db, baclofen, page):
    _add(page, live_server, baclofen, "10mg", 90)

    page.goto(live_server.url + reverse("accounts:signup"))
    page.get_by_label("Email").fill("browser.customer@example.com")
    page.get_by_label("Password", exact=True).fill(STRONG)
    page.get_by_label("Password confirmation").fill(STRONG)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(live_server.url + reverse("accounts:dashboard"))
    assert "Welcome! Your account is ready." in page.content()

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(live_server.url + "/")
    _add(page, live_server, baclofen, "25mg", 60)

    page.goto(live_server.url + reverse("accounts:login"))
    page.get_by_label("Email address").fill("BROWSER.customer@example.com")
    page.get_by_label("Password").fill(STRONG)
    page.locator("main").get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server.url + reverse("accounts:dashboard"))

    lines = CartLine.objects.filter(cart__user__email="browser.customer@example.com").select_related("tier__dosage")
    assert sorted((line.tier.dosage.strength, line.tier.quantity) for line in lines) == [("10mg", 90), ("25mg", 60)]
    page.goto(live_server.url + reverse("cart:detail"))
    body = page.locator("main").inner_text()
    assert "10mg" in body and "25mg" in body
