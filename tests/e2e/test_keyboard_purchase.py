"""A purchase with the keyboard only (Tab, Enter, Space, arrows and typing), focus visible at every stop."""

import re

import pytest

from orders.models import Order
from orders.state import PaymentStatus
from tests.e2e.test_checkout import shop  # noqa: F401  (live server + localstripe)
from tests.localstripe import CARD_OK

pytestmark = pytest.mark.e2e

# What has focus, and whether a sighted keyboard user can see it: a real outline or a ring (box-shadow).
# A visually hidden radio shows its focus on its label.
FOCUS = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return {where: "the page body", visible: false};
  let shown = el;
  if (el.type === "radio" && getComputedStyle(el).opacity === "0" && el.labels.length) shown = el.labels[0];
  const style = getComputedStyle(shown);
  const outline = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2;
  const where = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + " " + (el.placeholder || el.textContent || "").trim().slice(0, 40);
  return {where, visible: outline || style.boxShadow !== "none"};
}"""


class Keyboard:
    def __init__(self, page):
        self.page = page
        self.stops = []

    def tab_to(self, test: str, *, limit: int = 60) -> None:
        """Press Tab until `test` (JS, given the focused element) holds; every stop must show focus.
        (A field that moves focus on by itself when full, like the card number, may already be there.)"""
        if self.stops and self.page.evaluate(f"(el => {test})(document.activeElement)"):
            assert self.page.evaluate(FOCUS)["visible"]
            return
        for _ in range(limit):
            self.page.keyboard.press("Tab")
            focus = self.page.evaluate(FOCUS)
            self.stops.append(focus["where"])
            assert focus["visible"], (
                f"focus is not visible on {focus['where']} (stops so far: {self.stops})"
            )
            if self.page.evaluate(f"(el => {test})(document.activeElement)"):
                return
        raise AssertionError(f"{test} not reached with Tab; stops: {self.stops}")

    def type_into(self, test: str, text: str) -> None:
        self.tab_to(test)
        self.page.keyboard.type(text)


def test_keyboard_only_purchase_with_visible_focus(shop, page, general_product):
    keys = Keyboard(page)
    page.goto(shop.url + general_product.get_absolute_url())
    page.wait_for_load_state("load")

    keys.tab_to("el.tagName === 'BUTTON' && el.textContent.startsWith('Add to cart')")
    page.keyboard.press("Enter")
    page.locator("#cart-feedback [role=status]").wait_for()
    keys.tab_to("el.tagName === 'A' && el.textContent === 'View cart'")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/cart/$"))

    keys.tab_to("el.classList.contains('cart-checkout')")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/checkout/$"))
    page.locator("#card-element input").first.wait_for()

    keys.type_into("el.id === 'id_email'", "kim.lee@example.com")
    keys.type_into("el.id === 'id_name'", "Kim Lee")
    keys.type_into("el.id === 'id_line1'", "100 River Street")
    keys.type_into("el.id === 'id_city'", "Albany")
    keys.tab_to("el.id === 'id_state'")
    for _ in range(70):  # a closed select steps through its options with the arrow keys
        if page.evaluate("document.activeElement.value") == "NY":
            break
        page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.value") == "NY"
    keys.type_into("el.id === 'id_zip_code'", "12207")
    for placeholder, text in (
        ("number", CARD_OK),
        ("exp_month", "12"),
        ("exp_year", "34"),
        ("cvc", "123"),
        ("postal_code", "12207"),
    ):
        keys.type_into(f"el.placeholder === '{placeholder}'", text)
    keys.tab_to("el.id === 'pay-button'")
    page.keyboard.press("Space")

    page.wait_for_url(re.compile(r"/orders/\d+/\?t="))
    order = Order.objects.get(number=int(page.locator("#order-number").inner_text()))
    assert order.payment_status == PaymentStatus.CAPTURED and order.email == "kim.lee@example.com"
    assert len(keys.stops) > 15  # skip link, header, the product, the toast, the cart, every field
