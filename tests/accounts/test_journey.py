"""The whole account journey: sign up, fill the cart, sign out, sign back in, find cart and orders."""

import pytest
from django.urls import reverse

from cart.models import CartLine

from .conftest import emailed_link, emails_to, make_order

pytestmark = pytest.mark.django_db
STRONG = "Plum-orchard-1987-lantern"


def _tiers(product):
    from catalog.models import PackageTier

    return list(PackageTier.objects.filter(dosage__product=product).order_by("pk")[:2])


def test_cart_follows_the_customer_across_sign_out_and_sign_in(client, baclofen):
    first, second = _tiers(baclofen)
    # Browsing anonymously, then creating an account: the cart comes along.
    client.post(reverse("cart:add"), {"tier_id": first.pk, "packages": 1})
    response = client.post(
        reverse("accounts:signup"),
        {"email": "journey@example.com", "password1": STRONG, "password2": STRONG},
    )
    assert response.status_code == 302
    # The account is usable once the address is verified: the emailed link signs the customer in.
    (verification,) = emails_to("journey@example.com")
    assert client.post(emailed_link(verification)).status_code == 302
    assert list(
        CartLine.objects.filter(cart__user__email="journey@example.com").values_list(
            "tier_id", flat=True
        )
    ) == [first.pk]

    client.post(reverse("accounts:logout"))
    # Signed out, adds something else to a new anonymous cart...
    client.post(reverse("cart:add"), {"tier_id": second.pk, "packages": 2})
    client.post(reverse("cart:add"), {"tier_id": first.pk, "packages": 1})
    # ...and signs back in: one cart with both, quantities added up.
    response = client.post(
        reverse("accounts:login"), {"login": "journey@example.com", "password": STRONG}
    )
    assert response.status_code == 302
    lines = {
        line.tier_id: line.packages
        for line in CartLine.objects.filter(cart__user__email="journey@example.com")
    }
    assert lines == {first.pk: 2, second.pk: 2}
    cart_page = client.get(reverse("cart:detail")).content.decode()
    assert first.sku in cart_page or "Baclofen" in cart_page

    # An order placed with the account shows up with its status in words.
    from accounts.models import User

    user = User.objects.get(email="journey@example.com")
    order = make_order(user=user, email=user.email, status="ready_to_ship")
    page = client.get(reverse("accounts:dashboard")).content.decode()
    assert str(order.number) in page
    assert "Being prepared for shipping" in page
