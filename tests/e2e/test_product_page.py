"""The product page in Chromium: phone first screen, strength choice, no shift after Add to cart."""

import pytest

from cart.models import CartLine

pytestmark = pytest.mark.e2e

PHONE = {"width": 375, "height": 812}


def open_product(browser, url, viewport):
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(url)
    return context, page


def test_phone_first_screen_shows_status_strength_and_packs(
    live_server, transactional_db, browser, baclofen
):
    context, page = open_product(browser, live_server.url + baclofen.get_absolute_url(), PHONE)
    try:
        fold = PHONE["height"]

        def above_fold(locator):
            box = locator.bounding_box()
            return box is not None and box["y"] + box["height"] <= fold

        assert above_fold(page.get_by_role("heading", level=1, name="Baclofen"))
        assert above_fold(page.locator(".product-header .badge-rx"))
        assert above_fold(page.get_by_role("radio", name="10mg"))
        # The lowest per-pill pack of the chosen strength is named in the first screen.
        best = page.locator("#strength-table-1 .best-summary")
        assert above_fold(best) and "360 pills at $0.61 a pill" in best.inner_text()
        buttons = page.get_by_role("button", name="Add to cart (Baclofen 10mg")
        assert above_fold(buttons.first)
        # Only the chosen strength's packs are shown; the per-pill price is the large figure.
        assert page.get_by_role("button", name="Add to cart (Baclofen 25mg").count() == 0
        assert not page.locator("#strength-table-2").is_visible()
        per_pill = page.locator("#strength-table-1 .col-per-pill strong").first
        price = page.locator("#strength-table-1 .col-price").first
        size = "parseFloat(getComputedStyle(el).fontSize)"
        assert per_pill.evaluate(f"el => {size}") > price.evaluate(f"el => {size}")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    finally:
        context.close()


def test_strength_choice_shows_that_strengths_packs(
    live_server, transactional_db, browser, baclofen
):
    context, page = open_product(
        browser, live_server.url + baclofen.get_absolute_url(), {"width": 1280, "height": 900}
    )
    try:
        page.get_by_text("25mg", exact=True).first.click()
        assert page.get_by_role("radio", name="25mg").is_checked()
        assert page.locator("#strength-table-2").is_visible()
        assert not page.locator("#strength-table-1").is_visible()
        page.get_by_role("button", name="Add to cart (Baclofen 25mg, 90 pills)").click()
        page.locator("#cart-feedback [role=status]").wait_for()
        line = CartLine.objects.select_related("tier__dosage").get()
        assert (line.tier.dosage.strength, line.tier.quantity) == ("25mg", 90)
    finally:
        context.close()


@pytest.mark.parametrize("viewport", [PHONE, {"width": 1280, "height": 900}], ids=["375", "1280"])
def test_add_to_cart_confirmation_does_not_move_the_packs(
    live_server, transactional_db, browser, baclofen, viewport
):
    """Seen before: the confirmation pushed the rows down, and a second click added another pack."""
    context, page = open_product(browser, live_server.url + baclofen.get_absolute_url(), viewport)
    try:
        button = page.get_by_role("button", name="Add to cart (Baclofen 10mg, 90 pills)")
        button.scroll_into_view_if_needed()
        rows = page.locator("#strength-table-1 tbody tr")
        before = [rows.nth(i).bounding_box() for i in range(rows.count())]
        box = button.bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2

        page.mouse.click(x, y)
        page.locator("#cart-feedback [role=status]").wait_for()
        assert [rows.nth(i).bounding_box() for i in range(rows.count())] == before
        with page.expect_response(lambda r: "/cart/add/" in r.url):
            page.mouse.click(x, y)  # the same spot: the same pack again
        line = CartLine.objects.select_related("tier").get()
        assert (line.tier.quantity, line.packages) == (90, 2)
    finally:
        context.close()
