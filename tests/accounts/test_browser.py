"""In headless Chromium at phone width: sign up and verify, fill the cart, sign out and back in;
staff sign in with a TOTP code from the authenticator (computed here with allauth's own TOTP)."""

import re
import time

import pytest
from django.urls import reverse

from cart.models import CartLine
from notifications.models import OutboundEmail
from tests.accounts.mfa import totp_code, totp_secret
from tests.factories import UserFactory

pytestmark = pytest.mark.e2e

STRONG = "Plum-orchard-1987-lantern"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def browser_viewport() -> dict:
    return {"width": 375, "height": 812}


def _fits_the_screen(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def _add(page, live_server, product, strength, quantity):
    page.goto(live_server.url + product.get_absolute_url())
    strengths = page.locator(".strength-options label").filter(has_text=strength)
    if strengths.count():  # several strengths: show the chosen one's packs
        strengths.first.click()
    # The add may be an htmx request: wait for its answer, not just for the page to be idle.
    with page.expect_response(
        lambda response: "/cart/add/" in response.url and response.request.method == "POST"
    ):
        page.get_by_role(
            "button", name=f"Add to cart ({product.name} {strength}, {quantity} pills)"
        ).click()
    page.wait_for_load_state("networkidle")


def _link_in_email_to(address: str) -> str:
    row = OutboundEmail.objects.filter(recipient=address).latest("created_at")
    return re.search(r"https?://[^/\s]+(/\S+)", row.context["text"]).group(1)


def test_account_journey_in_the_browser(live_server, transactional_db, baclofen, page):
    _add(page, live_server, baclofen, "10mg", 90)

    page.goto(live_server.url + reverse("accounts:signup"))
    assert _fits_the_screen(page)
    page.get_by_label("Email").fill("browser.customer@example.com")
    page.get_by_label("Password", exact=True).fill(STRONG)
    page.get_by_label("Password (again)").fill(STRONG)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(live_server.url + reverse("account_email_verification_sent"))
    assert "Check your email" in page.locator("h1").inner_text()

    # The link from the email confirms the address and signs in; the cart came along.
    page.goto(live_server.url + _link_in_email_to("browser.customer@example.com"))
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url(live_server.url + reverse("accounts:dashboard"))

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(live_server.url + "/")
    _add(page, live_server, baclofen, "25mg", 60)

    page.goto(live_server.url + reverse("accounts:login"))
    assert _fits_the_screen(page)
    page.get_by_label("Email").fill("BROWSER.customer@example.com")
    page.get_by_label("Password").fill("wrong password")
    page.locator("main").get_by_role("button", name="Sign in").click()
    error = page.locator(".form-errors")
    assert "do not match an account" in error.inner_text()
    page.get_by_label("Password").fill(STRONG)
    page.locator("main").get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server.url + reverse("accounts:dashboard"))

    lines = CartLine.objects.filter(
        cart__user__email="browser.customer@example.com"
    ).select_related("tier__dosage")
    assert sorted((line.tier.dosage.strength, line.tier.quantity) for line in lines) == [
        ("10mg", 90),
        ("25mg", 60),
    ]
    page.goto(live_server.url + reverse("cart:detail"))
    body = page.locator("main").inner_text()
    assert "10mg" in body and "25mg" in body


def test_a_field_error_is_tied_to_its_field(live_server, transactional_db, page):
    page.goto(live_server.url + reverse("accounts:signup"))
    page.get_by_label("Email").fill("not-an-email")
    page.get_by_label("Password", exact=True).fill(STRONG)
    page.get_by_label("Password (again)").fill(STRONG)
    page.get_by_role("button", name="Create account").click()
    email = page.get_by_label("Email")
    assert email.get_attribute("aria-invalid") == "true"
    described = email.get_attribute("aria-describedby").split()
    messages = " ".join(page.locator(f"#{id_}").inner_text() for id_ in described)
    assert "valid email address" in messages
    assert _fits_the_screen(page)


def test_the_pharmacist_signs_in_with_a_totp_code(live_server, transactional_db, page):
    pharmacist = UserFactory(email="pharmacist@pharmacy.example", is_staff=True, is_superuser=True)
    secret = totp_secret(pharmacist)

    page.goto(live_server.url + "/admin/")
    page.wait_for_url(re.compile(r"/accounts/login/\?next=/admin/"))
    page.get_by_label("Email").fill(pharmacist.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.locator("main").get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server.url + reverse("mfa_authenticate"))
    assert _fits_the_screen(page)
    # A wrong code is refused, with the reason next to the field.
    page.get_by_role("textbox", name="Code").fill("000000")
    page.locator("main").get_by_role("button", name="Sign in").click()
    assert page.get_by_role("textbox", name="Code").get_attribute("aria-invalid") == "true"
    page.get_by_role("textbox", name="Code").fill(totp_code(secret, at=time.time()))
    page.locator("main").get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server.url + "/admin/")
    assert "Site administration" in page.content()
    page.goto(live_server.url + reverse("prescriptions:review_queue"))
    assert page.locator("h1").count() == 1 and "/accounts/" not in page.url


def test_staff_add_a_passkey_and_sign_in_with_it(live_server, transactional_db, page, settings):
    """WebAuthn where the browser supports it: Chromium's virtual authenticator plays the key."""
    settings.MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = True  # the live server is plain http://localhost
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    admin = UserFactory(email="keys@pharmacy.example", is_staff=True, is_superuser=True)
    secret = totp_secret(admin)

    def sign_in_with_password():
        page.goto(live_server.url + reverse("accounts:login"))
        page.get_by_label("Email").fill(admin.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.locator("main").get_by_role("button", name="Sign in").click()
        page.wait_for_url(live_server.url + reverse("mfa_authenticate"))

    sign_in_with_password()
    page.get_by_role("textbox", name="Code").fill(totp_code(secret, at=time.time()))
    page.locator("main").get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server.url + reverse("accounts:dashboard"))

    # Adding a key asks to confirm it's you (the password again), then the browser makes the key.
    page.goto(live_server.url + reverse("mfa_add_webauthn"))
    page.wait_for_url(re.compile(r"/reauthenticate/"))
    page.get_by_label("Password").fill(PASSWORD)
    page.locator("main").get_by_role("button", name="Confirm").click()
    page.wait_for_url(re.compile(r"/2fa/webauthn/add/"))
    page.get_by_label("Name").fill("Desk key")
    page.locator("#mfa_webauthn_add").click()
    page.wait_for_url(lambda url: "/webauthn/add/" not in url)
    from allauth.mfa.models import Authenticator

    assert Authenticator.objects.filter(user=admin, type="webauthn").count() == 1

    page.goto(live_server.url + reverse("accounts:logout"))
    page.locator("main").get_by_role("button", name="Sign out").click()
    sign_in_with_password()
    page.get_by_role("button", name="Use a security key or passkey").click()
    page.wait_for_url(lambda url: "/2fa/authenticate/" not in url)
    page.goto(live_server.url + "/admin/")
    assert "Site administration" in page.content()
