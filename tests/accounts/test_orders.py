"""Order history on the account page, and guests keeping an order in a new account."""

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User
from orders.models import OrderEvent
from orders.services import order_access_token

from .conftest import PASSWORD, emailed_link, emails_to, make_order

pytestmark = pytest.mark.django_db
STRONG = "Plum-orchard-1987-lantern"


def test_account_page_lists_own_orders_with_status_in_words(signed_in, customer, other_customer):
    older = make_order(user=customer, email=customer.email, status="shipped", total="19.90")
    newer = make_order(
        user=customer, email=customer.email, status="awaiting_review", total="142.00"
    )
    someone_elses = make_order(user=other_customer, email=other_customer.email)
    guest = make_order(user=None, email=customer.email)
    page = signed_in.get(reverse("accounts:dashboard")).content.decode()
    assert str(older.number) in page and str(newer.number) in page
    assert str(someone_elses.number) not in page
    assert str(guest.number) not in page  # not claimed: stays out of the account
    assert "Awaiting pharmacist review" in page and "Shipped" in page
    assert "$142.00" in page and "$19.90" in page
    assert f'href="/orders/{newer.number}/"' in page
    assert page.index(str(newer.number)) < page.index(str(older.number))


def test_shipped_orders_show_their_tracking_number(signed_in, customer):
    from orders.models import Shipment

    order = make_order(user=customer, email=customer.email, status="shipped")
    Shipment.objects.create(order=order, carrier="USPS", tracking_number="9400111899223344556677")
    page = signed_in.get(reverse("accounts:dashboard")).content.decode()
    assert "USPS tracking 9400111899223344556677" in page


def test_the_linked_order_page_opens_for_its_owner_only(client, customer, other_customer):
    order = make_order(user=customer, email=customer.email)
    client.force_login(customer)
    assert client.get(order.get_absolute_url()).status_code == 200
    client.force_login(other_customer)
    assert client.get(order.get_absolute_url()).status_code == 404


def _claim_url(order, token=None):
    return f"{reverse('accounts:claim_order', kwargs={'number': order.number})}?t={token or order_access_token(order)}"


def _claim_link_emailed(client, order) -> str:
    """The guest asks to keep the order; the link is emailed to the order's address."""
    page = client.get(_claim_url(order))
    assert page.status_code == 200
    assert order.email in page.content.decode()
    sent = client.post(_claim_url(order), {"t": order_access_token(order)})
    assert sent.status_code == 200 and "We've sent a link" in sent.content.decode()
    (email,) = emails_to(order.email, kind="account_verification")
    assert email.subject == "Keep your Riverside Pharmacy order in an account"
    return emailed_link(email)


def test_guest_keeps_the_order_through_the_link_emailed_to_the_orders_address(client):
    order = make_order(email="Guest.Buyer@Example.com")
    link = _claim_link_emailed(client, order)
    # Asking is not enough: no account, the order still a guest order.
    assert not User.objects.exists()
    order.refresh_from_db()
    assert order.user is None

    page = client.get(link)
    assert "Choose a password" in page.content.decode()
    response = client.post(link, {"password1": STRONG, "password2": STRONG})
    assert response.status_code == 302
    user = User.objects.get(email="guest.buyer@example.com")
    from allauth.account.models import EmailAddress

    assert EmailAddress.objects.get(user=user).verified
    order.refresh_from_db()
    assert order.user == user
    assert OrderEvent.objects.filter(order=order, kind="note").exists()
    dashboard = client.get(reverse("accounts:dashboard")).content.decode()
    assert str(order.number) in dashboard
    # The account signs in with its password from now on.
    client.post(reverse("accounts:logout"))
    assert (
        client.post(
            reverse("accounts:login"), {"login": user.email, "password": STRONG}
        ).status_code
        == 302
    )
    assert client.get(reverse("accounts:dashboard")).status_code == 200


def test_the_signed_order_link_alone_creates_no_account(client):
    order = make_order(email="guest1@example.com")
    response = client.post(
        _claim_url(order),
        {"password1": STRONG, "password2": STRONG, "t": order_access_token(order)},
    )
    assert response.status_code == 200
    assert not User.objects.exists()
    order.refresh_from_db()
    assert order.user is None


@pytest.mark.parametrize("forged", ["", "x" * 40, "eyJvIjoxfQ:forged:sig"])
def test_a_forged_or_other_orders_emailed_link_does_nothing(client, forged):
    order = make_order(email="guest8@example.com")
    other = make_order(email="guest9@example.com")
    from accounts.services import claim_token_make

    for token in ([forged] if forged else []) + [claim_token_make(order=other)]:
        url = reverse(
            "accounts:claim_order_confirm", kwargs={"number": order.number, "token": token}
        )
        assert client.post(url, {"password1": STRONG, "password2": STRONG}).status_code == 404
    assert not User.objects.exists()


def test_claim_with_a_weak_password_is_a_form_error(client):
    order = make_order(email="guest2@example.com")
    link = _claim_link_emailed(client, order)
    response = client.post(link, {"password1": "123", "password2": "123"})
    assert response.status_code == 200
    assert "too short" in response.content.decode()
    assert not User.objects.exists()
    order.refresh_from_db()
    assert order.user is None


@pytest.mark.parametrize("token", ["", "forged:token", "x" * 40])
def test_claim_needs_a_valid_token(client, token):
    order = make_order(email="guest3@example.com")
    url = reverse("accounts:claim_order", kwargs={"number": order.number}) + (
        f"?t={token}" if token else ""
    )
    assert client.get(url).status_code == 404
    assert client.post(url, {"password1": STRONG, "password2": STRONG}).status_code == 404
    assert not User.objects.exists()


def test_token_of_another_order_does_not_work(client):
    order = make_order(email="guest4@example.com")
    other = make_order(email="guest5@example.com")
    assert client.get(_claim_url(order, token=order_access_token(other))).status_code == 404


def test_existing_account_signs_in_then_adds_the_order(client, customer):
    order = make_order(email=customer.email.upper())
    link = _claim_link_emailed(client, order)
    response = client.get(link)
    assert response.status_code == 302 and response["Location"].startswith(
        reverse("accounts:login")
    )
    login = client.post(
        response["Location"], {"login": customer.email, "password": PASSWORD, "next": link}
    )
    assert login["Location"] == link
    confirm = client.get(link)
    assert "Add order" in confirm.content.decode()
    client.post(link)
    order.refresh_from_db()
    assert order.user == customer


def test_signed_in_with_the_orders_verified_address_adds_it_directly(client, customer):
    order = make_order(email=customer.email)
    client.force_login(customer)
    assert "Add order" in client.get(_claim_url(order)).content.decode()
    client.post(_claim_url(order), {"t": order_access_token(order)})
    order.refresh_from_db()
    assert order.user == customer


def test_signed_in_with_another_email_cannot_take_the_order(client, other_customer):
    order = make_order(email="guest6@example.com")
    client.force_login(other_customer)
    response = client.post(_claim_url(order), {"t": order_access_token(order)})
    assert response.status_code == 403
    order.refresh_from_db()
    assert order.user is None


def test_a_claim_link_for_an_order_in_another_account_is_refused_with_the_reason(
    client, customer, other_customer
):
    order = make_order(user=customer, email="guest7@example.com")
    from accounts.services import claim_token_make

    emailed = reverse(
        "accounts:claim_order_confirm",
        kwargs={"number": order.number, "token": claim_token_make(order=order)},
    )
    for signed_in in (None, other_customer):
        if signed_in:
            client.force_login(signed_in)
        for response in (
            client.post(_claim_url(order), {"t": order_access_token(order)}),
            client.post(emailed, {"password1": STRONG, "password2": STRONG}),
        ):
            assert response.status_code == 409
            page = response.content.decode()
            assert f"Order {order.number} is already in an account" in page
            assert reverse("accounts:login") in page  # where to go instead
    order.refresh_from_db()
    assert order.user == customer
    assert not User.objects.filter(email="guest7@example.com").exists()
    # Its owner following the same link is simply shown the order.
    client.force_login(customer)
    assert client.get(emailed)["Location"] == order.get_absolute_url()


# --- The claim without the test's wrapping transaction: as the web server runs it -----------


@pytest.mark.django_db(transaction=True)
def test_claim_from_the_emailed_link_to_the_account_page(client):
    order = make_order(email="Pat.Guest@Example.com")
    old_link = order.get_absolute_url() + "?t=" + order_access_token(order)
    assert 'id="claim-order"' in client.get(old_link).content.decode()
    link = _claim_link_emailed(client, order)

    response = client.post(link, {"password1": STRONG, "password2": STRONG})
    assert (
        response.status_code == 302
        and response["Location"] == reverse("accounts:dashboard") + "#orders"
    )
    dashboard = client.get(response["Location"]).content.decode()
    assert f"Order {order.number} is now in your account." in dashboard
    assert f'href="/orders/{order.number}/"' in dashboard
    assert "You have not placed an order yet" not in dashboard

    # The order page speaks to its signed-in owner: no offer to create an account.
    own_page = client.get(order.get_absolute_url()).content.decode()
    assert 'id="in-your-account"' in own_page and 'id="claim-order"' not in own_page
    assert "Create an account" not in own_page
    # The emailed order link opens it for nobody else now: sign in instead.
    refused = Client().get(old_link)
    assert refused.status_code == 403
    assert "This order is now kept in an account." in refused.content.decode()
    assert (
        f"{reverse('accounts:login')}?next=%2Forders%2F{order.number}%2F"
        in refused.content.decode()
    )


def test_an_approved_guest_order_claimed_brings_its_prescription_on_file(
    client, localstripe, baclofen
):
    from decimal import Decimal

    from django.utils import timezone

    from cart.models import Cart, CartLine
    from catalog.models import PackageTier
    from orders.models import OrderLine
    from prescriptions import on_file_record
    from prescriptions.models import PrescriptionOnFile
    from tests.prescriptions.prescription_support import authorise, make_pharmacist, place_rx

    tier = PackageTier.objects.get(dosage__product=baclofen, dosage__strength="10mg", quantity=90)
    cart = Cart.objects.create(session_key="guest-cart-claim")
    CartLine.objects.create(cart=cart, tier=tier, packages=1, price_when_added=tier.price)
    order = authorise(localstripe, place_rx(cart, tier=tier, email="jane.guest@example.com"))
    line = OrderLine.objects.get(order=order)
    on_file_record.prescription_approve_and_record(
        order=order,
        by=make_pharmacist(),
        records=[
            on_file_record.RecordInput(
                line_id=line.pk,
                directions="1 tablet 3 times a day",
                daily_dose=Decimal("3"),
                quantity_per_fill=line.pack_size,
                refills_authorised=2,
                date_written=timezone.localdate(),
            )
        ],
    )
    assert (
        PrescriptionOnFile.objects.get(source_order=order).user is None
    )  # a guest's: no account yet

    link = _claim_link_emailed(client, order)
    assert client.post(link, {"password1": STRONG, "password2": STRONG}).status_code == 302
    user = User.objects.get(email="jane.guest@example.com")
    record = PrescriptionOnFile.objects.get(source_order=order)
    assert record.user == user
    assert record.events.filter(kind="changed", by=user).exists()  # the move is in its history
    mine = client.get(reverse("refills:list")).content.decode()
    assert "Baclofen" in mine and record.get_absolute_url() in mine
    assert client.get(record.get_absolute_url()).status_code == 200
    assert "My prescriptions" in client.get(order.get_absolute_url()).content.decode()


def _at_once(*calls):
    """Each call in its own thread (its own database connection), released together."""
    import threading

    from django.db import connections

    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait(timeout=10)
            results[index] = call()
        except Exception as error:  # noqa: BLE001 - reported by the caller's assertions
            results[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.django_db(transaction=True)
def test_claiming_twice_at_once_attaches_once(customer):
    order = make_order(email=customer.email)
    clients = [Client(), Client()]
    for each in clients:
        each.force_login(customer)
    responses = _at_once(
        *(lambda c=c: c.post(_claim_url(order), {"t": order_access_token(order)}) for c in clients)
    )
    assert [r.status_code for r in responses] == [302, 302], responses
    order.refresh_from_db()
    assert order.user == customer
    assert OrderEvent.objects.filter(order=order, kind="note").count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_new_accounts_at_once_from_the_emailed_link_make_one_account(client):
    order = make_order(email="twice@example.com")
    link = _claim_link_emailed(client, order)
    responses = _at_once(
        *(lambda: Client().post(link, {"password1": STRONG, "password2": STRONG}) for _ in range(2))
    )
    kept = [
        r
        for r in responses
        if r.status_code == 302 and r["Location"] == reverse("accounts:dashboard") + "#orders"
    ]
    assert len(kept) == 1, responses
    # The other is sent to sign in (the account exists now), or told the order is in an account.
    (other,) = [r for r in responses if r is not kept[0]]
    assert other.status_code == 409 or other["Location"].startswith(reverse("accounts:login")), (
        other
    )
    user = User.objects.get(email="twice@example.com")
    order.refresh_from_db()
    assert order.user == user
    assert OrderEvent.objects.filter(order=order, kind="note").count() == 1
