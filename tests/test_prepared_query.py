"""pharmacy.prepared: a queryset's SQL built once, run with new ids, giving what the queryset gives."""

from decimal import Decimal

import pytest
from djmoney.money import Money

from cart.models import Cart, CartLine
from pharmacy.prepared import PreparedQuery
from tests.factories import DosageFactory, PackageTierFactory, ProductFactory, UserFactory

pytestmark = pytest.mark.django_db


def lines_of_cart(cart_id):
    return (
        CartLine.objects.filter(cart_id=cart_id)
        .select_related("cart", "tier__dosage__product")
        .order_by("id")
    )


def cart_with_lines(count: int) -> Cart:
    cart = Cart.objects.create(user=UserFactory())
    for index in range(count):
        tier = PackageTierFactory(
            dosage=DosageFactory(product=ProductFactory()), quantity=10 + index
        )
        CartLine.objects.create(
            cart=cart, tier=tier, packages=index + 1, price_when_added=tier.price
        )
    return cart


def test_same_objects_as_the_queryset_for_each_id(django_assert_num_queries):
    query = PreparedQuery(lines_of_cart, "cart_id")
    for cart in (cart_with_lines(2), cart_with_lines(3), Cart.objects.create(session_key="empty")):
        expected = list(lines_of_cart(cart.pk))
        with django_assert_num_queries(1):
            lines = query(cart_id=cart.pk)
            # Every related object came with the row: reading them costs no query.
            seen = [
                (l.pk, l.cart.pk, l.tier.pk, l.tier.dosage.pk, l.tier.dosage.product.name)
                for l in lines
            ]
        assert lines == expected
        assert seen == [
            (l.pk, l.cart.pk, l.tier.pk, l.tier.dosage.pk, l.tier.dosage.product.name)
            for l in expected
        ]
        for mine, theirs in zip(lines, expected):
            assert mine.price_when_added == theirs.price_when_added and isinstance(
                mine.price_when_added, Money
            )
            assert mine.added_at == theirs.added_at and mine.added_at.tzinfo is not None
            assert mine.tier.dosage.strength_micrograms == theirs.tier.dosage.strength_micrograms
            assert not mine._state.adding and mine._state.db == "default"


def test_built_once_and_fixed_values_kept(django_assert_num_queries):
    calls = []

    def build(cart_id):
        calls.append(cart_id)
        return CartLine.objects.filter(
            cart_id=cart_id, packages__gte=2, tier__is_active=True
        ).order_by("id")

    query = PreparedQuery(build, "cart_id")
    cart = cart_with_lines(3)
    assert [l.packages for l in query(cart_id=cart.pk)] == [2, 3]
    CartLine.objects.filter(cart=cart, packages=3).update(packages=1)
    assert [l.packages for l in query(cart_id=cart.pk)] == [2]
    assert len(calls) == 2  # once for the model (routing), once for the SQL; never per call


def test_ids_only_and_every_parameter_used():
    query = PreparedQuery(lines_of_cart, "cart_id")
    with pytest.raises(TypeError):
        query(cart_id="1")
    with pytest.raises(TypeError):
        query(cart_id=True)
    with pytest.raises(TypeError):
        query(cart=1)
    with pytest.raises(ValueError, match="does not use"):
        PreparedQuery(lambda cart_id, user_id: lines_of_cart(cart_id), "cart_id", "user_id")(
            cart_id=1, user_id=2
        )


def test_plain_model_querysets_only():
    with pytest.raises(ValueError, match="plain model querysets"):
        PreparedQuery(
            lambda cart_id: CartLine.objects.filter(cart_id=cart_id).values("id"), "cart_id"
        )(cart_id=1)


def test_reverse_one_to_one_without_a_row_reads_as_missing(django_assert_num_queries):
    from prescriptions.models import CartRefill

    query = PreparedQuery(
        lambda cart_id: CartLine.objects.filter(cart_id=cart_id).select_related(
            "refill__prescription"
        ),
        "cart_id",
    )
    cart = cart_with_lines(1)
    (line,) = query(cart_id=cart.pk)
    with django_assert_num_queries(0), pytest.raises(CartRefill.DoesNotExist):
        _ = line.refill
    assert Decimal(line.price_when_added.amount) == line.tier.price.amount
