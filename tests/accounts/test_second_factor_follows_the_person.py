"""The second factor follows the person, not the path (issue 22).

Anyone who can act as staff (``pharmacy.permissions.can_act_as_staff``) gets no staff page, no
prescription file and no review decision from a session that has not passed the second factor:
whatever ``SCRIPT_NAME`` a proxy header sets, however the path is spelled, whatever the method,
and even with the middleware taken out (the admin site and the views' decorators decide).
"""

from urllib.parse import unquote, urlencode

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import Resolver404, resolve, reverse

from orders.models import Order
from pharmacy.permissions import can_act_as_staff
from prescriptions.management.commands.setup_pharmacist_permissions import (
    grant_pharmacist_permissions,
)
from prescriptions.models import Prescription, PrescriptionReview
from tests.accounts.mfa import password_only_login, staff_login, totp_code, totp_secret
from tests.factories import UserFactory
from tests.prescriptions.prescription_support import MINIMAL_PDF

from .conftest import PASSWORD, emails_to, make_order

pytestmark = pytest.mark.django_db

MIDDLEWARE = "accounts.middleware.StaffSecondFactorMiddleware"
QUESTION = "Which dose did your doctor prescribe?"


@pytest.fixture(autouse=True)
def private_root(settings, tmp_path):
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"


@pytest.fixture
def rx_order(db):
    """An order waiting for review, with an uploaded prescription on file."""
    order = make_order(user=UserFactory(email="patient@example.com"))
    prescription = Prescription(
        order=order, description="Baclofen 10mg, 90 tablets", content_type="application/pdf"
    )
    prescription.file.save("scan.pdf", ContentFile(MINIMAL_PDF), save=True)
    return order


def pharmacist(**kwargs):
    """A member of the pharmacist group, without "staff status" unless asked."""
    user = UserFactory(**kwargs)
    user.groups.add(grant_pharmacist_permissions())
    return user


def staff_urls(order) -> dict[str, str]:
    prescription = order.prescriptions.get()
    return {
        "admin index": reverse("admin:index"),
        "admin orders": reverse("admin:orders_order_changelist"),
        "admin refund": reverse("admin:orders_order_refund", args=[order.pk]),
        "admin prices": reverse("admin:catalog_packagetier_changelist"),
        "review queue": reverse("prescriptions:review_queue"),
        "review page": reverse("prescriptions:review_order", args=[order.number]),
        "prescription file": reverse("prescriptions:prescription_file", args=[prescription.pk]),
        "review decision": reverse("prescriptions:review_request_info", args=[order.number]),
    }


def ask(client, method: str, url: str):
    """``url`` as a WSGI server passes it on (decoded, and a leading "//" kept as the path: the
    test client would read that as a host name)."""
    data = (
        {"message": QUESTION, "submission_key": "0b3d8a4e-7f0e-4f5b-9a4d-1d2c3b4a5f60"}
        if method == "POST"
        else {}
    )
    return client.generic(
        method, "/", urlencode(data), "application/x-www-form-urlencoded", PATH_INFO=unquote(url)
    )


def assert_sent_to_second_factor(response, where: str) -> None:
    assert response.status_code == 302, (where, response.status_code)
    location = response["Location"]
    assert location.startswith(
        (reverse("mfa_activate_totp") + "?", reverse("mfa_reauthenticate") + "?")
    ), (where, location)


def assert_no_decision(order) -> None:
    assert not PrescriptionReview.objects.filter(order=order).exists()
    assert Order.objects.get(pk=order.pk).status == "awaiting_review"


def without_middleware(settings) -> None:
    """Take the second line away: the admin site and the views' decorators must hold alone."""
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != MIDDLEWARE]


@pytest.mark.parametrize("middleware", [True, False], ids=["with-middleware", "without-middleware"])
@pytest.mark.parametrize("script_name", ["", "/shop"])
def test_a_password_only_staff_session_reaches_nothing_whatever_the_prefix_or_method(
    settings, rx_order, script_name, middleware
):
    if not middleware:
        without_middleware(settings)
    boss = UserFactory(email="boss@pharmacy.example", is_staff=True, is_superuser=True)
    totp_secret(boss)
    client = Client(SCRIPT_NAME=script_name)  # what gunicorn sets from a trusted proxy's header
    password_only_login(client, boss)
    for where, url in staff_urls(rx_order).items():
        # The method each page is for: exactly the second factor.
        assert_sent_to_second_factor(
            ask(client, "POST" if where == "review decision" else "GET", url), where
        )
        for method in ("GET", "HEAD", "OPTIONS", "POST"):
            response = ask(client, method, url)
            if response.status_code != 405:  # a method the view does not take: nothing ran
                assert_sent_to_second_factor(response, f"{method} {where}")
    assert_no_decision(rx_order)


# Spellings of the staff paths. One the resolver would serve must be sent to the second factor;
# one it would not serve answers 404 (or 301 to add a slash, or the middleware's redirect first).
SPELLINGS = [
    "//staff/review/",
    "/staff//review/",
    "/STAFF/review/",
    "/st%61ff/review/",
    "/staff/review/%2E/",
    "/staff./review/",
    "/staff/review",
    "/admin//",
    "//admin/",
    "/ADMIN/",
    "/%61dmin/orders/order/",
    "/admin/%2e%2e/admin/",
    "/admin/orders/order",
]


@pytest.mark.parametrize("middleware", [True, False], ids=["with-middleware", "without-middleware"])
def test_no_spelling_of_a_staff_path_opens_it(settings, middleware):
    if not middleware:
        without_middleware(settings)
    client = Client(SCRIPT_NAME="/shop")
    password_only_login(client, UserFactory(is_staff=True, is_superuser=True))
    served = 0
    for path in SPELLINGS:
        try:
            resolve(unquote(path))
        except Resolver404:
            resolves = False
        else:
            resolves, served = True, served + 1
        for method in ("GET", "HEAD", "OPTIONS"):
            response = ask(client, method, path)
            where = f"{method} {path}"
            if resolves:
                if response.status_code != 405:  # OPTIONS to a GET-only view: nothing ran
                    assert_sent_to_second_factor(response, where)
            elif response.status_code == 301:
                assert response["Location"] == "/shop" + unquote(path) + "/", where
            elif response.status_code == 302:
                assert middleware, where
                assert_sent_to_second_factor(response, where)
            else:
                assert response.status_code == 404, (where, response.status_code)
    assert (
        served == 5
    )  # the list does hold spellings the resolver serves (the admin's catch-all too)


@pytest.mark.parametrize(
    "who", ["pharmacist without staff status", "superuser without staff status"]
)
def test_a_non_staff_pharmacist_or_superuser_must_pass_the_second_factor(client, rx_order, who):
    user = (
        pharmacist(email="rx@pharmacy.example")
        if who.startswith("pharmacist")
        else UserFactory(email="root@pharmacy.example", is_superuser=True)
    )
    assert not user.is_staff
    urls = staff_urls(rx_order)
    review_pages = ("review queue", "review page", "prescription file", "review decision")

    # Signed in with the password alone (no authenticator yet: allauth asks nothing more).
    assert client.post(reverse("accounts:login"), {"login": user.email, "password": PASSWORD})[
        "Location"
    ] == reverse("accounts:dashboard")
    for where in review_pages:
        response = ask(client, "POST" if where == "review decision" else "GET", urls[where])
        assert_sent_to_second_factor(response, where)
        assert response["Location"].startswith(reverse("mfa_activate_totp") + "?")
    assert_no_decision(rx_order)
    assert (
        client.get(reverse("accounts:dashboard")).status_code == 200
    )  # their own pages are not affected
    assert (
        len(emails_to(user.email, kind="account_new_sign_in")) == 1
    )  # told of the sign-in, as staff are

    # An authenticator, and a session from before it: asked for a code, which opens the pages.
    secret = totp_secret(user)
    client = Client()
    password_only_login(client, user)
    sent = client.get(urls["review queue"])
    assert sent["Location"].startswith(reverse("mfa_reauthenticate") + "?")
    assert (
        client.post(reverse("mfa_reauthenticate"), {"code": totp_code(secret)}).status_code == 302
    )
    assert client.get(urls["review queue"]).status_code == 200
    assert client.get(urls["prescription file"]).status_code == 200
    assert ask(client, "POST", urls["review decision"]).status_code == 302
    (review,) = PrescriptionReview.objects.filter(order=rx_order)
    assert review.by == user and review.note == QUESTION


def test_who_can_act_as_staff(django_assert_num_queries):
    customer = UserFactory()
    with django_assert_num_queries(2):  # groups, then own permissions; then kept for the request
        assert can_act_as_staff(customer) is False
        assert can_act_as_staff(customer) is False
    assert can_act_as_staff(None) is False
    assert can_act_as_staff(UserFactory(is_staff=True)) is True
    assert can_act_as_staff(UserFactory(is_superuser=True)) is True
    assert can_act_as_staff(UserFactory(is_staff=True, is_active=False)) is True
    grouped = UserFactory()
    grouped.groups.add(Group.objects.create(name="pricing"))  # a group with no permission yet
    assert can_act_as_staff(grouped) is True
    permitted = UserFactory()
    permitted.user_permissions.add(Permission.objects.get(codename="refund_order"))
    assert can_act_as_staff(permitted) is True


def test_customers_are_not_asked_for_a_second_factor(client, rx_order):
    client.force_login(rx_order.user)
    urls = staff_urls(rx_order)
    assert client.get(urls["prescription file"]).status_code == 200  # their own prescription
    assert client.get(urls["review queue"]).status_code == 403
    assert ask(client, "POST", urls["review decision"]).status_code == 403
    assert_no_decision(rx_order)


def test_staff_who_passed_the_second_factor_use_the_staff_pages_under_a_script_name(rx_order):
    user = pharmacist(email="rx@pharmacy.example", is_staff=True)
    client = Client(SCRIPT_NAME="/shop")
    staff_login(client, user)
    urls = staff_urls(rx_order)
    assert ask(client, "GET", urls["review queue"]).status_code == 200
    assert ask(client, "GET", urls["admin orders"]).status_code == 200
    assert ask(client, "POST", urls["review decision"]).status_code == 302
    assert PrescriptionReview.objects.filter(order=rx_order, by=user).count() == 1


def test_every_staff_url_asks_for_the_second_factor_without_the_middleware(settings, rx_order):
    """Each staff route (today's and any added later) is guarded by its own view, not only by the
    middleware's path prefixes."""
    from orders import urls as order_urls
    from prescriptions import refill_urls
    from prescriptions import urls as prescription_urls

    without_middleware(settings)
    client = Client()
    password_only_login(client, pharmacist(is_staff=True))
    prescription = rx_order.prescriptions.get()
    routes = [
        p.pattern._route
        for p in [*order_urls.urlpatterns, *prescription_urls.urlpatterns, *refill_urls.urlpatterns]
        if p.pattern._route.startswith(("staff/", "prescriptions/"))
    ]
    assert len(routes) >= 10
    for route in routes:
        url = "/" + route.replace("<int:number>", str(rx_order.number)).replace(
            "<uuid:pk>", str(prescription.pk)
        )
        for method in ("GET", "POST"):
            response = ask(client, method, url)
            if response.status_code != 405:
                assert_sent_to_second_factor(response, f"{method} {url}")
    assert_no_decision(rx_order)
