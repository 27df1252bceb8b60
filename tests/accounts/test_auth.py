"""Sign-up with a verified address, sign-in, sign-out, password change and reset (django-allauth)."""

import pytest
from django.urls import reverse

from accounts.models import User
from notifications.models import EmailKind, OutboundEmail

from .conftest import PASSWORD, emailed_link, emails_to, page_without_tokens

pytestmark = pytest.mark.django_db
STRONG = "Plum-orchard-1987-lantern"


def _sign_up(client, email, password=STRONG, password2=None):
    return client.post(
        reverse("accounts:signup"),
        {"email": email, "password1": password, "password2": password2 or password},
    )


def _sign_in(client, email, password, **extra):
    return client.post(reverse("accounts:login"), {"login": email, "password": password, **extra})


def test_sign_up_needs_the_emailed_link_before_the_account_can_be_used(client):
    response = _sign_up(client, "New.Person@Example.com")
    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")
    user = User.objects.get()
    assert user.email == "new.person@example.com" and user.check_password(STRONG)
    # Not signed in, and signing in is refused until the address is verified.
    assert client.get(reverse("accounts:dashboard")).status_code == 302
    refused = _sign_in(client, "new.person@example.com", STRONG)
    assert refused["Location"] == reverse("account_email_verification_sent")
    assert client.get(reverse("accounts:dashboard")).status_code == 302

    (verification,) = emails_to("new.person@example.com", kind=EmailKind.ACCOUNT_VERIFICATION)
    assert verification.subject == "Confirm your email address for Riverside Pharmacy"
    link = emailed_link(verification)
    page = client.get(link)
    assert page.status_code == 200 and "new.person@example.com" in page.content.decode()
    confirmed = client.post(link)
    assert confirmed.status_code == 302
    dashboard = client.get(reverse("accounts:dashboard"))
    assert dashboard.status_code == 200
    assert "new.person@example.com" in dashboard.content.decode()

    # From now on the password alone signs in.
    client.post(reverse("accounts:logout"))
    assert _sign_in(client, "NEW.person@example.com", STRONG)["Location"] == reverse(
        "accounts:dashboard"
    )


def test_sign_up_answers_the_same_for_an_address_that_has_an_account(customer):
    from django.test import Client

    pages = []
    for email in ("nobody.yet@example.com", customer.email.upper()):
        visitor = Client()
        response = _sign_up(visitor, email)
        assert response.status_code == 302
        page = visitor.get(response["Location"])
        pages.append(
            (response["Location"], page_without_tokens(page).replace(email.lower(), "ADDRESS"))
        )
    assert pages[0] == pages[1]
    assert "Confirmation email sent to ADDRESS" in pages[0][1]
    assert User.objects.filter(email__iexact=customer.email).count() == 1
    # The owner of the address is told by email, not the visitor on the page.
    (notice,) = emails_to(customer.email)
    assert "already have one" in notice.context["text"]
    customer.refresh_from_db()
    assert customer.check_password(PASSWORD)


@pytest.mark.parametrize(
    "password, message",
    [("short1", "too short"), ("password123", "too common"), ("83749261048", "entirely numeric")],
)
def test_sign_up_applies_the_password_validators(client, password, message):
    response = _sign_up(client, "a@example.com", password)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not User.objects.exists()


def test_sign_up_rejects_mismatched_passwords_and_bad_email(client):
    response = _sign_up(client, "not-an-email", STRONG, STRONG + "x")
    assert response.status_code == 200
    assert "valid email address" in response.content.decode()
    assert not User.objects.exists()


def test_sign_in_follows_a_safe_next_only(client, customer):
    response = _sign_in(client, customer.email, PASSWORD, next="https://evil.example/")
    assert response["Location"] == reverse("accounts:dashboard")
    client.post(reverse("accounts:logout"))
    assert _sign_in(client, customer.email, PASSWORD, next="/cart/")["Location"] == "/cart/"


@pytest.mark.parametrize("bare", ["evil", "cart", "/no-such-page/"])
def test_sign_in_and_the_signed_in_login_page_ignore_a_bare_word_or_unknown_path(
    client, customer, bare
):
    """``next=evil`` would have sent the customer to /accounts/login/evil, a 404."""
    assert _sign_in(client, customer.email, PASSWORD, next=bare)["Location"] == reverse(
        "accounts:dashboard"
    )
    response = client.get(reverse("accounts:login"), {"next": bare})
    assert response.status_code == 302 and response["Location"] == reverse("accounts:dashboard")
    assert client.get(reverse("accounts:login"), {"next": "/cart/"})["Location"] == "/cart/"


def test_log_in_with_email_in_any_case(client, customer):
    response = _sign_in(client, customer.email.upper(), PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:dashboard")
    assert client.get(reverse("accounts:dashboard")).status_code == 200


def test_a_wrong_password_and_an_unknown_address_get_the_same_clear_error(client, customer):
    wrong = _sign_in(client, customer.email, "wrong")
    unknown = _sign_in(client, "no.account@example.com", "wrong")
    for response in (wrong, unknown):
        assert response.status_code == 200
        assert "do not match an account" in response.content.decode()
    assert client.get(reverse("accounts:dashboard")).status_code == 302


def test_log_out_needs_post(signed_in):
    page = signed_in.get(reverse("accounts:logout"))
    assert page.status_code == 200 and "Do you want to sign out?" in page.content.decode()
    assert signed_in.get(reverse("accounts:dashboard")).status_code == 200
    response = signed_in.post(reverse("accounts:logout"))
    assert response.status_code == 302
    assert signed_in.get(reverse("accounts:dashboard")).status_code == 302


def test_password_change(signed_in, customer):
    response = signed_in.post(
        reverse("accounts:password_change"),
        {"oldpassword": PASSWORD, "password1": STRONG, "password2": STRONG},
    )
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.check_password(STRONG)
    # Still signed in (session hash updated), and told by email through the outbox.
    assert signed_in.get(reverse("accounts:dashboard")).status_code == 200
    (notice,) = emails_to(customer.email, kind=EmailKind.ACCOUNT_PASSWORD_CHANGED)
    assert notice.subject == "Your Riverside Pharmacy password was changed"


def test_password_change_rejects_a_wrong_old_password(signed_in, customer):
    response = signed_in.post(
        reverse("accounts:password_change"),
        {"oldpassword": "nope", "password1": STRONG, "password2": STRONG},
    )
    assert response.status_code == 200
    customer.refresh_from_db()
    assert customer.check_password(PASSWORD)


def test_password_reset_by_email(client, customer, baclofen):
    response = client.post(reverse("accounts:password_reset"), {"email": customer.email.upper()})
    assert response["Location"] == reverse("account_reset_password_done")
    (message,) = emails_to(customer.email, kind=EmailKind.ACCOUNT_PASSWORD_RESET)
    assert message.subject == "Reset your Riverside Pharmacy password"
    # No health detail in the subject (nor anything but the pharmacy name).
    assert "baclofen" not in message.subject.lower()
    link = emailed_link(message)
    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200
    assert "Choose a new password" in form_page.content.decode()
    set_url = form_page.redirect_chain[-1][0]
    done = client.post(set_url, {"password1": STRONG, "password2": STRONG})
    assert done["Location"] == reverse("account_reset_password_from_key_done")
    customer.refresh_from_db()
    assert customer.check_password(STRONG)
    # The link works once.
    again = client.get(link, follow=True)
    assert "This link no longer works" in again.content.decode()


def test_password_reset_answers_the_same_for_an_unknown_address(client, customer):
    known = client.post(reverse("accounts:password_reset"), {"email": customer.email})
    unknown = client.post(reverse("accounts:password_reset"), {"email": "nobody@example.com"})
    assert known["Location"] == unknown["Location"] == reverse("account_reset_password_done")
    # The unknown address gets no reset link, only a note that it has no account.
    (note,) = emails_to("nobody@example.com")
    assert "no account" in note.context["text"] and "password/reset/key" not in note.context["text"]


def test_the_fourth_reset_in_an_hour_sends_nothing_and_says_the_same(client, customer):
    answers = [
        client.post(reverse("accounts:password_reset"), {"email": customer.email}) for _ in range(4)
    ]
    assert len(emails_to(customer.email, kind=EmailKind.ACCOUNT_PASSWORD_RESET)) == 3
    assert {(a.status_code, a["Location"]) for a in answers} == {
        (302, reverse("account_reset_password_done"))
    }
    # The limit is per address: another customer asking now still gets their email.
    client.post(reverse("accounts:password_reset"), {"email": "someone.else@example.com"})
    assert OutboundEmail.objects.filter(recipient="someone.else@example.com").count() == 1


def test_account_pages_render(client):
    for name in (
        "accounts:login",
        "accounts:signup",
        "accounts:password_reset",
        "account_reset_password_done",
        "account_email_verification_sent",
    ):
        response = client.get(reverse(name))
        assert response.status_code == 200, name
        assert "<h1" in response.content.decode()


def test_signed_in_user_is_sent_from_login_and_signup_to_the_account(signed_in):
    assert signed_in.get(reverse("accounts:login"))["Location"] == reverse("accounts:dashboard")
    assert signed_in.get(reverse("accounts:signup"))["Location"] == reverse("accounts:dashboard")


def test_changing_the_email_address_verifies_the_new_one_first(signed_in, customer):
    response = signed_in.post(
        reverse("account_email"), {"action_add": "", "email": "new.address@example.com"}
    )
    assert response.status_code == 302
    customer.refresh_from_db()
    old_address = customer.email
    assert old_address != "new.address@example.com"  # not until the link is followed
    (verification,) = emails_to("new.address@example.com", kind=EmailKind.ACCOUNT_VERIFICATION)
    signed_in.post(emailed_link(verification))
    customer.refresh_from_db()
    assert customer.email == "new.address@example.com"
    # The old address is told, through the outbox.
    (notice,) = emails_to(old_address, kind=EmailKind.ACCOUNT_EMAIL_CHANGE)
    assert notice.subject == "Your Riverside Pharmacy email address was changed"


def test_account_pages_are_never_cached(signed_in):
    for name in ("accounts:dashboard", "account_email", "accounts:password_change", "mfa_index"):
        response = signed_in.get(reverse(name))
        assert response.status_code == 200, name
        assert "no-store" in response["Cache-Control"], name


def test_an_account_from_before_verification_verifies_at_its_next_sign_in(client):
    """Accounts created before allauth have no verified address yet: the first sign-in sends the link."""
    old = User.objects.create_user(email="old.customer@example.com", password=PASSWORD)
    response = _sign_in(client, old.email, PASSWORD)
    assert response["Location"] == reverse("account_email_verification_sent")
    assert client.get(reverse("accounts:dashboard")).status_code == 302
    (verification,) = emails_to(old.email, kind=EmailKind.ACCOUNT_VERIFICATION)
    client.post(emailed_link(verification))
    client.post(reverse("accounts:logout"))
    assert _sign_in(client, old.email, PASSWORD)["Location"] == reverse("accounts:dashboard")
