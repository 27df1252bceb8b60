"""Every customer page and the pharmacist's review pages in Chromium: axe-core finds no WCAG 2.1
A/AA violation (nor one of the best-practice rules kept below) at 375 and 1280 px, and no page
scrolls sideways at 320 px.

Lean on purpose (two cores): one browser, one context per role, pages visited in turn. Set
A11Y_SCREENSHOTS=<dir> to keep a full-page screenshot of every page at both widths.
"""

import os
import re

import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.a11y.conftest import fill_cart, sign_in

pytestmark = pytest.mark.e2e

WCAG_TAGS = {"wcag2a", "wcag2aa", "wcag21a", "wcag21aa"}
#: Best-practice rules (not WCAG criteria) the shop keeps: landmarks named and unique, one main and
#: one h1, headings in order, all content in landmarks, no empty headings or table headers,
#: tabindex never positive, roles allowed on their elements, focusable scroll regions.
BEST_PRACTICE_RULES = {
    "landmark-unique",
    "landmark-one-main",
    "landmark-no-duplicate-banner",
    "landmark-no-duplicate-contentinfo",
    "landmark-no-duplicate-main",
    "landmark-banner-is-top-level",
    "landmark-contentinfo-is-top-level",
    "landmark-main-is-top-level",
    "landmark-complementary-is-top-level",
    "page-has-heading-one",
    "heading-order",
    "empty-heading",
    "empty-table-header",
    "region",
    "skip-link",
    "tabindex",
    "aria-allowed-role",
    "scrollable-region-focusable",
    "label-title-only",
    "meta-viewport-large",
    "presentation-role-conflict",
    "image-redundant-alt",
    "aria-text",
}
AXE_OPTIONS = {
    "runOnly": {"type": "tag", "values": sorted(WCAG_TAGS | {"best-practice"})},
    "resultTypes": ["violations"],
}
WIDTHS = (375, 1280)
axe = Axe()


def kept(violation: dict) -> bool:
    return bool(WCAG_TAGS & set(violation["tags"])) or violation["id"] in BEST_PRACTICE_RULES


def visit(page, url: str) -> None:
    response = page.goto(url)
    assert response.status == 200, f"{url}: {response.status}"
    page.wait_for_load_state("load")


def screenshot(page, path: str, width: int) -> None:
    folder = os.environ.get("A11Y_SCREENSHOTS")
    if folder:
        name = re.sub(r"[^a-z0-9]+", "-", path.split("?t=")[0].lower()).strip("-") or "home"
        if "?" in path and "?t=" not in path:
            name += "-" + re.sub(r"[^a-z0-9]+", "-", path.split("?")[1].lower())
        os.makedirs(folder, exist_ok=True)
        page.screenshot(path=os.path.join(folder, f"{name}-{width}.png"), full_page=True)


def contexts(browser, site, baclofen, general_product):
    """(role, page, paths) for a visitor with a cart, a signed-in customer and a pharmacist."""
    for role, user, paths in (
        ("guest", None, site.guest_pages),
        ("customer", site.customer, site.customer_pages),
        ("pharmacist", site.pharmacist, site.staff_pages),
    ):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        if user is not None:
            sign_in(context, site, user)
        page = context.new_page()
        page.set_default_timeout(20_000)
        if role == "guest":
            fill_cart(page, site, baclofen, general_product)
        try:
            yield role, page, paths
        finally:
            context.close()


def test_every_page_has_no_axe_violations_at_375_and_1280(browser, site, baclofen, general_product):
    found = []
    for role, page, paths in contexts(browser, site, baclofen, general_product):
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            for path in paths:
                visit(page, site.url + path)
                screenshot(page, path, width)
                for v in filter(kept, axe.run(page, options=AXE_OPTIONS).response["violations"]):
                    targets = [" ".join(node["target"]) for node in v["nodes"]][:3]
                    found.append(f"{role} {path} @{width}: {v['id']} ({v['impact']}) {targets}")
    assert not found, "\n".join(found)


def test_no_page_scrolls_sideways_at_320(browser, site, baclofen, general_product):
    wide = []
    for role, page, paths in contexts(browser, site, baclofen, general_product):
        page.set_viewport_size({"width": 320, "height": 700})
        for path in paths:
            visit(page, site.url + path)
            width = page.evaluate("document.documentElement.scrollWidth")
            if width > 320:
                culprit = page.evaluate(
                    """() => [...document.querySelectorAll('body *')].filter(el => el.getBoundingClientRect().right > 321)
                        .map(el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + '.' + [...el.classList].join('.')).slice(0, 3)"""
                )
                wide.append(f"{role} {path}: {width}px {culprit}")
    assert not wide, "\n".join(wide)
