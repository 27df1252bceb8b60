"""Cart services: adding, changing, removing, merging and expiring carts."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from djmoney.money import Money

from cart.models import Cart, CartLine
from cart.pricing import cart_summary
from cart.services import (
    SESSION_CART_ID,
    CartError,
    CartLineNotFound,
    cart_add_tier,
    cart_and_lines_for_request,
    cart_clear,
    cart_for_request,
    cart_merge_into_user,
    cart_remove_line,
    cart_set_packages,
    carts_delete_expired,
)
from cart.tasks import delete_expired_carts
from catalog.models import LegalClass
from tests.factories import PackageTierFactory, ProductFactory, UserFactory

pytestmark = pytest.mark.django_db


def usd(amount: str) -> Money:
    return Money(Decimal(amount), "USD")


@pytest.fixture
def cart(customer):
    return Cart.objects.create(user=customer)


def lines_of(cart):
    return list(
        CartLine.objects.filter(cart=cart).values_list("tier_id", "packages").order_by("id")
    )


class TestCartForRequest:
    def test_anonymous_without_create_writes_nothing(self, make_request):
        request = make_request()
        assert cart_for_request(request, create=False) is None
        assert Cart.objects.count() == 0

    def test_anonymous_cart_is_kept_in_the_session_and_found_again(self, make_request):
        request = make_request()
        cart = cart_for_request(request, create=True)
        assert cart.user is None
        assert cart.session_key == request.session.session_key
        assert request.session[SESSION_CART_ID] == cart.pk
        request.session.save()
        # A later request (any process) with the same session finds the same cart.
        from django.contrib.sessions.backends.db import SessionStore

        again = make_request(session=SessionStore(session_key=request.session.session_key))
        assert cart_for_request(again, create=False) == cart

    def test_signed_in_customer_gets_one_cart(self, make_request, customer):
        first = cart_for_request(make_request(user=customer), create=True)
        second = cart_for_request(make_request(user=customer), create=True)
        assert first == second
        assert first.user == customer

    def test_session_pointing_at_another_customers_cart_is_ignored(self, make_request, customer):
        other = Cart.objects.create(user=UserFactory())
        request = make_request()
        request.session[SESSION_CART_ID] = other.pk
        assert cart_for_request(request, create=False) is None


class TestCartAndLinesForRequest:
    """The cart and checkout pages' read: the cart and its priced lines in one query."""

    def test_signed_in_cart_and_lines_in_one_query(
        self, make_request, customer, tier_of, django_assert_num_queries
    ):
        cart = Cart.objects.create(user=customer)
        cart_add_tier(cart=cart, tier_id=tier_of("25mg", 270).pk, packages=2)
        cart_add_tier(cart=cart, tier_id=tier_of("10mg", 90).pk)
        request = make_request(user=customer)
        with django_assert_num_queries(1):
            found, lines = cart_and_lines_for_request(request)
            names = [
                (line.tier.dosage.strength, line.tier.dosage.product.name, line.cart.pk)
                for line in lines
            ]
        assert found == cart
        assert names == [("25mg", "Baclofen", cart.pk), ("10mg", "Baclofen", cart.pk)]
        assert request.session[SESSION_CART_ID] == cart.pk
        with django_assert_num_queries(0):
            summary = cart_summary(found, lines=lines)
        assert summary == cart_summary(cart)

    def test_anonymous_cart_follows_its_session(
        self, make_request, tier_of, django_assert_num_queries
    ):
        request = make_request()
        cart = cart_for_request(request, create=True)
        cart_add_tier(cart=cart, tier_id=tier_of("10mg", 90).pk)
        with django_assert_num_queries(1):
            found, lines = cart_and_lines_for_request(request)
        assert found == cart and [line.tier_id for line in lines] == [tier_of("10mg", 90).pk]
        # The session key was cycled (Django does so on some security events): followed, as
        # cart_for_request does.
        request.session.cycle_key()
        found, _ = cart_and_lines_for_request(request)
        found.refresh_from_db()
        assert found.session_key == request.session.session_key

    def test_empty_or_missing_cart_as_cart_for_request(
        self, make_request, customer, django_assert_num_queries
    ):
        request = make_request(user=customer)
        with django_assert_num_queries(2):
            assert cart_and_lines_for_request(request) == (None, [])
        cart = Cart.objects.create(user=customer)
        assert cart_and_lines_for_request(make_request(user=customer)) == (cart, [])
        assert cart_and_lines_for_request(make_request()) == (None, [])

    def test_another_customers_cart_is_not_read_through_the_session(self, make_request, tier_of):
        other = Cart.objects.create(user=UserFactory())
        cart_add_tier(cart=other, tier_id=tier_of("10mg", 90).pk)
        request = make_request()
        request.session[SESSION_CART_ID] = other.pk
        assert cart_and_lines_for_request(request) == (None, [])
        assert SESSION_CART_ID not in request.session


class TestAdd:
    def test_reference_cart(self, cart, tier_of):
        cart_add_tier(cart=cart, tier_id=tier_of("10mg", 90).pk, packages=1)
        change = cart_add_tier(cart=cart, tier_id=str(tier_of("25mg", 270).pk), packages="1")
        assert change.message == "Added Baclofen 25mg, 270 pills to your cart."
        summary = cart_summary(cart)
        assert summary.subtotal == usd("567.93")
        assert summary.savings == usd("422.45")
        assert summary.total == summary.subtotal

    def test_same_tier_adds_to_the_line_at_the_current_price(self, cart, tier_of):
        tier = tier_of("10mg", 90)
        cart_add_tier(cart=cart, tier_id=tier.pk, packages=2)
        cart_add_tier(cart=cart, tier_id=tier.pk, packages=3)
        line = CartLine.objects.get(cart=cart)
        assert line.packages == 5
        assert line.price_when_added == usd("68.23")

    @pytest.mark.parametrize("tier_id", ["999999", "abc", "", None, "-3", "1.5", "0"])
    def test_bad_tier_id_refused(self, cart, baclofen, tier_id):
        with pytest.raises(CartError) as excinfo:
            cart_add_tier(cart=cart, tier_id=tier_id)
        assert excinfo.value.message
        assert lines_of(cart) == []

    @pytest.mark.parametrize(
        "packages", ["0", "-1", 0, -5, "abc", "", "2.5", "11", "99999999999999999", "1e3"]
    )
    def test_bad_packages_refused(self, cart, tier_of, packages):
        with pytest.raises(CartError) as excinfo:
            cart_add_tier(cart=cart, tier_id=tier_of("10mg", 90).pk, packages=packages)
        assert "from 1 to 10" in excinfo.value.message
        assert lines_of(cart) == []

    def test_line_total_may_not_exceed_the_per_line_maximum(self, cart, tier_of):
        tier = tier_of("10mg", 90)
        cart_add_tier(cart=cart, tier_id=tier.pk, packages=8)
        with pytest.raises(CartError, match="at most 10 packages"):
            cart_add_tier(cart=cart, tier_id=tier.pk, packages=3)
        assert lines_of(cart) == [(tier.pk, 8)]

    def test_controlled_substance_refused(self, cart):
        tier = PackageTierFactory(
            dosage__product=ProductFactory(name="Oxycodone", legal_class=LegalClass.CONTROLLED)
        )
        with pytest.raises(CartError, match="not available for online order"):
            cart_add_tier(cart=cart, tier_id=tier.pk)
        assert lines_of(cart) == []

    def test_inactive_tier_and_unpublished_product_refused(self, cart):
        inactive = PackageTierFactory(is_active=False)
        hidden = PackageTierFactory(dosage__product=ProductFactory(is_published=False))
        for tier in (inactive, hidden):
            with pytest.raises(CartError, match="no longer available"):
                cart_add_tier(cart=cart, tier_id=tier.pk)
        assert lines_of(cart) == []

    def test_max_pills_per_order_counts_every_line_of_the_product(self, cart):
        product = ProductFactory(name="Limited", max_pills_per_order=100)
        small = PackageTierFactory(dosage__product=product, quantity=30)
        large = PackageTierFactory(dosage=small.dosage, quantity=60)
        cart_add_tier(cart=cart, tier_id=small.pk, packages=1)
        cart_add_tier(cart=cart, tier_id=large.pk, packages=1)  # 90 pills: fine
        with pytest.raises(CartError, match="limited to 100 pills per order; that would make 120"):
            cart_add_tier(cart=cart, tier_id=small.pk, packages=1)
        assert sorted(lines_of(cart)) == sorted([(small.pk, 1), (large.pk, 1)])

    def test_out_of_stock_refused_and_stock_limits_quantity(self, cart):
        empty = PackageTierFactory(stock=0)
        few = PackageTierFactory(stock=2)
        with pytest.raises(CartError, match="out of stock"):
            cart_add_tier(cart=cart, tier_id=empty.pk)
        with pytest.raises(CartError, match="Only 2 packages"):
            cart_add_tier(cart=cart, tier_id=few.pk, packages=3)
        assert lines_of(cart) == []


class TestChange:
    def test_set_packages_and_remove(self, cart, tier_of):
        change = cart_add_tier(cart=cart, tier_id=tier_of("10mg", 90).pk)
        cart_set_packages(cart=cart, line_id=str(change.line.pk), packages="4")
        assert lines_of(cart) == [(change.line.tier_id, 4)]
        cart_remove_line(cart=cart, line_id=change.line.pk)
        assert lines_of(cart) == []

    @pytest.mark.parametrize("packages", ["0", "-2", "11", "x"])
    def test_set_packages_bad_values_change_nothing(self, cart, tier_of, packages):
        change = cart_add_tier(cart=cart, tier_id=tier_of("10mg", 90).pk, packages=2)
        with pytest.raises(CartError):
            cart_set_packages(cart=cart, line_id=change.line.pk, packages=packages)
        assert lines_of(cart) == [(change.line.tier_id, 2)]

    def test_another_customers_line_is_not_found(self, cart, tier_of):
        theirs = Cart.objects.create(user=UserFactory())
        their_line = cart_add_tier(cart=theirs, tier_id=tier_of("10mg", 90).pk, packages=2).line
        with pytest.raises(CartLineNotFound, match="not found in your cart"):
            cart_set_packages(cart=cart, line_id=their_line.pk, packages=5)
        with pytest.raises(CartLineNotFound):
            cart_remove_line(cart=cart, line_id=their_line.pk)
        with pytest.raises(CartLineNotFound):
            cart_remove_line(cart=None, line_id=their_line.pk)
        assert lines_of(theirs) == [(their_line.tier_id, 2)]

    def test_lowering_a_withdrawn_line_is_allowed_raising_is_not(self, cart):
        tier = PackageTierFactory()
        line = cart_add_tier(cart=cart, tier_id=tier.pk, packages=3).line
        tier.is_active = False
        tier.save()
        cart_set_packages(cart=cart, line_id=line.pk, packages=1)
        with pytest.raises(CartError):
            cart_set_packages(cart=cart, line_id=line.pk, packages=2)

    def test_clear(self, cart, tier_of):
        cart_add_tier(cart=cart, tier_id=tier_of("10mg", 90).pk)
        cart_clear(cart=cart)
        assert lines_of(cart) == []


class TestMerge:
    def test_anonymous_cart_merges_into_existing_customer_cart(
        self, make_request, customer, tier_of
    ):
        ten, twenty_five = tier_of("10mg", 90), tier_of("25mg", 270)
        own = Cart.objects.create(user=customer)
        cart_add_tier(cart=own, tier_id=ten.pk, packages=8)
        request = make_request()
        anonymous = cart_for_request(request, create=True)
        cart_add_tier(cart=anonymous, tier_id=ten.pk, packages=5)
        cart_add_tier(cart=anonymous, tier_id=twenty_five.pk, packages=1)

        request.user = customer
        request.session.cycle_key()  # what login() does
        notes = cart_merge_into_user(request=request, user=customer)

        assert sorted(lines_of(own)) == sorted([(ten.pk, 10), (twenty_five.pk, 1)])
        assert notes == [
            "Baclofen 10mg, 90 pills: you can order at most 10 packages, so your cart now has 10."
        ]
        assert not Cart.objects.filter(pk=anonymous.pk).exists()
        assert request.session[SESSION_CART_ID] == own.pk

    def test_anonymous_cart_is_adopted_when_customer_has_none(
        self, make_request, customer, tier_of
    ):
        request = make_request()
        anonymous = cart_for_request(request, create=True)
        cart_add_tier(cart=anonymous, tier_id=tier_of("10mg", 90).pk)
        cart_merge_into_user(request=request, user=customer)
        anonymous.refresh_from_db()
        assert anonymous.user == customer
        assert anonymous.session_key is None

    def test_login_without_anonymous_cart_points_session_at_own_cart(self, make_request, customer):
        own = Cart.objects.create(user=customer)
        request = make_request(user=customer)
        assert cart_merge_into_user(request=request, user=customer) == []
        assert request.session[SESSION_CART_ID] == own.pk


class TestExpiry:
    def age(self, cart, days):
        Cart.objects.filter(pk=cart.pk).update(updated_at=timezone.now() - timedelta(days=days))

    def test_only_old_anonymous_carts_are_deleted(self, customer, tier_of):
        old_anonymous = Cart.objects.create(session_key="old")
        cart_add_tier(cart=old_anonymous, tier_id=tier_of("10mg", 90).pk)
        fresh_anonymous = Cart.objects.create(session_key="fresh")
        old_customer = Cart.objects.create(user=customer)
        self.age(old_anonymous, 31)
        self.age(old_customer, 400)
        self.age(fresh_anonymous, 5)
        assert carts_delete_expired(older_than=timedelta(days=30)) == 1
        assert set(Cart.objects.values_list("pk", flat=True)) == {
            fresh_anonymous.pk,
            old_customer.pk,
        }
        assert not CartLine.objects.filter(cart_id=old_anonymous.pk).exists()

    @override_settings(CART_ANONYMOUS_TTL_DAYS=7)
    def test_management_command_and_task_use_the_ttl(self, capsys):
        a = Cart.objects.create(session_key="a")
        b = Cart.objects.create(session_key="b")
        self.age(a, 8)
        self.age(b, 6)
        call_command("delete_expired_carts")
        assert "Deleted 1 anonymous cart" in capsys.readouterr().out
        assert list(Cart.objects.values_list("pk", flat=True)) == [b.pk]
        self.age(b, 9)
        assert delete_expired_carts() == 1
        assert not Cart.objects.exists()

    def test_changes_keep_a_cart_alive(self, tier_of):
        cart = Cart.objects.create(session_key="k")
        self.age(cart, 40)
        cart_add_tier(cart=cart, tier_id=tier_of("10mg", 90).pk)
        assert carts_delete_expired(older_than=timedelta(days=30)) == 0


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="row locks need PostgreSQL; SQLite locks the whole table",
)
@pytest.mark.django_db(transaction=True)
def test_simultaneous_adds_of_the_same_tier_do_not_fail(baclofen):
    """Two requests adding the same pack at once: both land on one line, nothing raises."""
    from catalog.models import PackageTier

    tier = PackageTier.objects.get(dosage__strength="10mg", quantity=90)
    cart = Cart.objects.create(session_key="race")
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def add():
        try:
            barrier.wait()
            cart_add_tier(cart=cart, tier_id=tier.pk, packages=1)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=add) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert list(CartLine.objects.filter(cart=cart).values_list("packages", flat=True)) == [2]
