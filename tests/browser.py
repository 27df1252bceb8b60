"""One headless Chromium for the whole test session (Playwright's sync API).

Every browser test uses these fixtures: Playwright's sync API owns an event loop in the test
thread, so two Playwright sessions in one process collide; one session-scoped browser with a
fresh context per test avoids that and saves a browser start per test.
"""

import os

import pytest

# Playwright's sync API runs an event loop in this thread; the ORM calls made by tests are safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(
                f"{CHROMIUM} is missing; CI must run the browser tests (apt-get install -y chromium)."
            )
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser_viewport() -> dict:
    """Override in a module to test another screen size."""
    return {"width": 1280, "height": 900}


@pytest.fixture
def page(browser, browser_viewport):
    context = browser.new_context(viewport=browser_viewport)
    page = context.new_page()
    page.set_default_timeout(20_000)
    # Shown with a failing test's output: the browser's console and failed requests.
    page.on("console", lambda msg: print(f"[console.{msg.type}] {msg.text}"))
    page.on("pageerror", lambda exc: print(f"[pageerror] {exc}"))
    page.on("requestfailed", lambda req: print(f"[requestfailed] {req.url} {req.failure}"))
    try:
        yield page
    finally:
        context.close()
