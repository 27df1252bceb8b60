"""Sign-up, sign-in, sign-out, password change and reset."""
import re

import pytest
from django.urls import reverse

from accounts.models import User

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db
STRONG = "Plum-orchard-1987-lantern"


def test_sign_up_creates_an_account_and_signs_in(client):
    response = client.post(
        reverse("accounts:signup"),
        {"email": "New.Person@Example.com", "password1": STRONG, "password2": STRONG},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:dashboard")
    user = User.objects.get()
    assert user.email == "new.person@example.com"
    assert user.check_password(STRONG)
    page = client.get(reverse("accounts:dashboard"))
    assert page.status_code == 200
    assert "new.person@example.com" in page.content.decode()


def test_sign_up_rejects_an_email_already_used_in_another_case(client, customer):
    response = client.post(
        reverse("accounts:signup"),
        {"email": customer.email.upper(), "password1": STRONG, "password2": STRONG},
    )
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert User.objects.count() == 1


@pytest.mark.parametrize(
    "password, message",
    [("short1", "too short"), ("password123", "too common"), ("83749261048", "entirely numeric")],
)
def test_sign_up_applies_the_password_validators(client, password, message):
    response = client.post(
        reverse("accounts:signup"), {"email": "a@example.com", "password1": password, "password2": password}
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not User.objects.exists()


def test_sign_up_rejects_mismatched_passwords_and_bad_email(client):
    response = client.post(
        reverse("accounts:signup"), {"email": "not-an-email", "password1": STRONG, "password2": STRONG + "x"}
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "valid email address" in body
    assert not User.objects.exists()


def test_sign_up_follows_a_safe_next_only(client):
    response = client.post(
        reverse("accounts:signup"),
        {"email": "b@example.com", "password1": STRONG, "password2": STRONG, "next": "https://evil.example/"},
    )
    assert response["Location"] == reverse("accounts:dashboard")
    client.post(reverse("accounts:logout"))
    response = client.post(
        reverse("accounts:signup"),
        {"email": "c@example.com", "password1": STRONG, "password2": STRONG, "next": "/cart/"},
    )
    assert response["Location"] == "/cart/"


def test_log_in_with_email_in_any_case(client, customer):
    response = client.post(reverse("accounts:login"), {"username": customer.email.upper(), "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:dashboard")
    assert client.get(reverse("accounts:dashboard")).status_code == 200


def test_log_in_with_a_wrong_password_shows_a_clear_error(client, customer):
    response = client.post(reverse("accounts:login"), {"username": customer.email, "password": "wrong"})
    assert response.status_code == 200
    assert "do not match an account" in response.content.decode()
    assert client.get(reverse("accounts:dashboard")).status_code == 302


def test_log_out_needs_post(signed_in):
    assert signed_in.get(reverse("accounts:logout")).status_code == 405
    assert signed_in.get(reverse("accounts:dashboard")).status_code == 200
    response = signed_in.post(reverse("accounts:logout"))
    assert response.status_code == 302
    assert signed_in.get(reverse("accounts:dashboard")).status_code == 302


def test_password_change(signed_in, customer):
    response = signed_in.post(
        reverse("accounts:password_change"),
        {"old_password": PASSWORD, "new_password1": STRONG, "new_password2": STRONG},
    )
    assert response["Location"] == reverse("accounts:password_change_done")
    customer.refresh_from_db()
    assert customer.check_password(STRONG)
    # Still signed in (session hash updated).
    assert signed_in.get(reverse("accounts:dashboard")).status_code == 200


def test_password_change_rejects_a_wrong_old_password(signed_in, customer):
    response = signed_in.post(
        reverse("accounts:password_change"),
        {"old_password": "nope", "new_password1": STRONG, "new_password2": STRONG},
    )
    assert response.status_code == 200
    customer.refresh_from_db()
    assert customer.check_password(PASSWORD)


def test_password_reset_by_email(client, customer, mailoutbox, baclofen):
    response = client.post(reverse("accounts:password_reset"), {"email": customer.email.upper()})
    assert response["Location"] == reverse("accounts:password_reset_done")
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == [customer.email]
    assert message.subject == "Reset your Riverside Pharmacy password"
    # No health detail in the subject (nor anything but the pharmacy name).
    assert "baclofen" not in message.subject.lower()
    link = re.search(r"http://testserver(/accounts/password/reset/\S+/)", message.body).group(1)
    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200
    assert "Choose a new password" in form_page.content.decode()
    set_url = form_page.redirect_chain[-1][0]
    done = client.post(set_url, {"new_password1": STRONG, "new_password2": STRONG})
    assert done["Location"] == reverse("accounts:password_reset_complete")
    customer.refresh_from_db()
    assert customer.check_password(STRONG)
    # The link works once.
    again = client.get(link, follow=True)
    assert "This link no longer works" in again.content.decode()


def test_password_reset_for_an_unknown_email_sends_nothing_and_says_the_same(client, mailoutbox):
    response = client.post(reverse("accounts:password_reset"), {"email": "nobody@example.com"})
    assert response["Location"] == reverse("accounts:password_reset_done")
    assert mailoutbox == []


def test_registration_pages_render(client):
    for name in ("accounts:login", "accounts:signup", "accounts:password_reset", "accounts:password_reset_done",
                 "accounts:password_reset_complete"):
        response = client.get(reverse(name))
        assert response.status_code == 200, name
        assert "<h1" in response.content.decode()


def test_signed_in_user_is_sent_from_login_and_signup_to_the_account(signed_in):
    assert signed_in.get(reverse("accounts:login"))["Location"] == reverse("accounts:dashboard")
    assert signed_in.get(reverse("accounts:signup"))["Location"] == reverse("accounts:dashboard")
