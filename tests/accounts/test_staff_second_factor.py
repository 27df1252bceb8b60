"""Staff pages only after a second factor in this session (accounts.middleware + allauth's mfa)."""

import io
import uuid

import pytest
from allauth.mfa.models import Authenticator
from django.contrib.admin.models import LogEntry
from django.core.management import CommandError, call_command
from django.urls import reverse

from accounts import services
from tests.accounts.mfa import password_only_login, staff_login, totp_code, totp_secret
from tests.factories import UserFactory

from .conftest import PASSWORD, emails_to, make_order

pytestmark = pytest.mark.django_db


def _staff_pages(order) -> list[str]:
    return [
        reverse("admin:index"),
        reverse("admin:orders_order_changelist"),
        reverse("admin:orders_order_refund", args=[order.pk]),  # refunds
        reverse("admin:catalog_packagetier_changelist"),  # price changes
        reverse("admin:accounts_user_changelist"),
        reverse("prescriptions:review_queue"),  # prescription review
        reverse("prescriptions:review_order", args=[order.number]),
        reverse("prescriptions:prescription_file", args=[uuid.uuid4()]),  # prescription files
    ]


@pytest.fixture
def superuser(db):
    return UserFactory(email="boss@pharmacy.example", is_staff=True, is_superuser=True)


@pytest.mark.parametrize("has_authenticator", [False, True])
def test_a_password_only_staff_session_gets_none_of_the_staff_pages(
    client, superuser, has_authenticator
):
    order = make_order()
    if has_authenticator:
        totp_secret(superuser)
    password_only_login(client, superuser)
    expected = reverse("mfa_reauthenticate") if has_authenticator else reverse("mfa_activate_totp")
    for url in _staff_pages(order):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(expected + "?next="), (url, response["Location"])
        # Posting is stopped just the same (a refund, an approval...).
        assert client.post(url, {"amount": "1.00", "reason": "x"}).status_code == 302, url
    # Customer pages are not affected.
    assert client.get(reverse("accounts:dashboard")).status_code == 200


def test_after_the_second_factor_the_staff_pages_open(client, superuser):
    order = make_order()
    staff_login(client, superuser)
    assert client.get(reverse("admin:index")).status_code == 200
    assert client.get(reverse("prescriptions:review_queue")).status_code == 200
    assert client.get(reverse("admin:orders_order_refund", args=[order.pk])).status_code in (
        200,
        302,
    )


def test_the_admin_sign_in_page_is_the_shops(client):
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302
    assert response["Location"] == reverse("account_login") + "?next=/admin/"


def test_staff_without_an_authenticator_sets_one_up_and_goes_on(client):
    pharmacist = UserFactory(email="new.pharmacist@pharmacy.example", is_staff=True)
    signed_in = client.post(
        reverse("accounts:login"), {"login": pharmacist.email, "password": PASSWORD}
    )
    assert signed_in.status_code == 302
    sent = client.get(reverse("admin:index"))
    assert sent["Location"].startswith(reverse("mfa_activate_totp"))
    # Adding an authenticator asks for the password again (allauth's reauthentication)...
    ask = client.get(sent["Location"])
    assert ask["Location"].startswith(reverse("account_reauthenticate"))
    back = client.post(ask["Location"], {"password": PASSWORD})
    assert back["Location"] == sent["Location"]
    page = client.get(sent["Location"])
    assert page.status_code == 200 and "Set up your authenticator app" in page.content.decode()
    secret = client.session["mfa.totp.secret"]
    wrong = client.post(reverse("mfa_activate_totp"), {"code": "000000"})
    assert wrong.status_code == 200 and not Authenticator.objects.filter(user=pharmacist).exists()
    done = client.post(reverse("mfa_activate_totp"), {"code": totp_code(secret)})
    assert done["Location"] == reverse("mfa_view_recovery_codes")
    codes = client.get(done["Location"]).content.decode()
    assert (
        "Recovery codes" in codes and f'href="{reverse("admin:index")}"' in codes
    )  # "Continue" back
    assert client.get(reverse("admin:index")).status_code == 200
    assert Authenticator.objects.filter(user=pharmacist, type="recovery_codes").exists()


def test_staff_with_an_authenticator_give_a_code_after_the_password(client):
    pharmacist = UserFactory(email="rx@pharmacy.example", is_staff=True)
    secret = totp_secret(pharmacist)
    response = client.post(
        reverse("accounts:login"), {"login": pharmacist.email, "password": PASSWORD}
    )
    assert response["Location"] == reverse("mfa_authenticate")
    # Password alone: not signed in at all.
    assert client.get(reverse("accounts:dashboard")).status_code == 302
    assert client.post(reverse("mfa_authenticate"), {"code": "123456"}).status_code == 200
    done = client.post(reverse("mfa_authenticate"), {"code": totp_code(secret)})
    assert done.status_code == 302
    assert client.get(reverse("admin:index")).status_code == 200
    # Staff are told about each sign-in, through the outbox.
    (notice,) = emails_to(pharmacist.email, kind="account_new_sign_in")
    assert notice.subject == "New sign-in to your Riverside Pharmacy staff account"


def test_a_superuser_resets_another_staff_members_second_factor_audited(client, superuser):
    pharmacist = UserFactory(email="lost.phone@pharmacy.example", is_staff=True)
    totp_secret(pharmacist)
    out = io.StringIO()
    call_command("reset_second_factor", pharmacist.email, "--by", superuser.email, stdout=out)
    assert "1 authenticator(s) removed" in out.getvalue()
    assert not Authenticator.objects.filter(user=pharmacist).exists()
    entry = LogEntry.objects.get(object_id=str(pharmacist.pk))
    assert entry.user == superuser and "Second factor reset" in entry.change_message
    # Nobody else may: not a plain staff member, not on oneself.
    with pytest.raises(CommandError, match="Only a superuser"):
        call_command("reset_second_factor", superuser.email, "--by", pharmacist.email, stdout=out)
    with pytest.raises(services.NotAllowed):
        services.staff_second_factor_reset(user=superuser, by=superuser)

    # The same from the admin, as an action on the user list.
    totp_secret(pharmacist)
    staff_login(client, superuser)
    client.post(
        reverse("admin:accounts_user_changelist"),
        {"action": "reset_second_factor", "_selected_action": [pharmacist.pk]},
    )
    assert not Authenticator.objects.filter(user=pharmacist).exists()
    assert LogEntry.objects.filter(object_id=str(pharmacist.pk), user=superuser).count() == 2


def test_the_demo_staff_sign_in_with_the_printed_totp_secret(client, settings):
    settings.DEBUG = True
    out = io.StringIO()
    call_command("setup_demo_staff", stdout=out)
    line = next(
        line for line in out.getvalue().splitlines() if "pharmacist@pharmacy.example" in line
    )
    assert "TOTP secret OJUXMZLSONUWIZJNOBUGC4TNMFRWS43U" in line  # the one the README shows
    password = line.split()[1]
    response = client.post(
        reverse("accounts:login"), {"login": "pharmacist@pharmacy.example", "password": password}
    )
    assert response["Location"] == reverse("mfa_authenticate")
    # The code an authenticator app holding the printed secret shows, as the demo command prints it.
    printed = io.StringIO()
    call_command("demo_totp_code", "pharmacist@pharmacy.example", stdout=printed)
    client.post(reverse("mfa_authenticate"), {"code": printed.getvalue().strip()})
    assert client.get(reverse("prescriptions:review_queue")).status_code == 200
    # Running it again keeps the same secret (the printed one stays valid).
    call_command("setup_demo_staff", stdout=io.StringIO())
    pharmacist = Authenticator.objects.get(
        user__email="pharmacist@pharmacy.example", type="totp"
    ).user
    assert totp_secret(pharmacist) == "OJUXMZLSONUWIZJNOBUGC4TNMFRWS43U"
