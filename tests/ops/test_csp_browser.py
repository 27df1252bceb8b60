"""The Content-Security-Policy blocks nothing the shop's own pages use (headless Chromium)."""

import pytest

pytestmark = [pytest.mark.e2e]

RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline') + ' ' + (e.sourceFile || '') + ':' + e.lineNumber);
});
"""


def violations_on(page, url: str) -> list[str]:
    page.goto(url)
    page.wait_for_load_state("load")
    page.wait_for_timeout(300)  # htmx initialises on DOMContentLoaded and injects its styles then
    return page.evaluate("window.__cspViolations")


@pytest.mark.django_db(transaction=True)
def test_catalog_and_cart_pages_load_without_csp_violations(live_server, page, baclofen):
    page.add_init_script(RECORD_VIOLATIONS)
    found = {}
    for path in ("/", "/products/", "/products/?q=baclofen", baclofen.get_absolute_url(), "/cart/"):
        found[path] = violations_on(page, live_server.url + path)
    assert found == {path: [] for path in found}
    header = page.request.get(live_server.url + "/").headers["content-security-policy"]
    assert "script-src 'self'" in header
