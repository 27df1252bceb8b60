"""Helpers for the discount and tax tests."""


def use_client_cart(client, cart) -> None:
    """Make ``cart`` the test client's (anonymous) session cart."""
    session = client.session
    session["cart_id"] = cart.pk
    session.save()
    cart.session_key = session.session_key
    cart.save()
