"""The cart page's layout is rendered once per process (``catalog.page_cache.render_in_shell``,
issue #17): what it answers must be byte for byte what ``render()`` wrote, for every kind of
visitor, and nothing of one visitor may reach another."""
from __future__ import annotations

import pytest
from django.contrib import messages
from django.contrib.auth.models import AnonymousUser
from django.contrib.messages.storage.fallback import FallbackStorage
from django.contrib.sessions.backends.db import SessionStore
from django.shortcuts import render
from django.test import RequestFactory
from django.utils.safestring import mark_safe

from catalog import page_cache
from catalog.page_cache import render_in_shell
from tests.factories import UserFactory
from tests.orders.prescription_support import make_pharmacist

@pytest.fixture(autouse=True)
def no_shell_yet():
    """Each test starts as a new process would: its first request renders the layout."""
    page_cache._forget_shells()


TOKEN = "S" * 32 + "t" * 32
BODY = mark_safe('<div id="cart-body">the body &amp; its forms</div>')


def visit(user=None, *, message: str = "", query: str = "", nonce: str = "nonce-of-this-response"):
    request = RequestFactory().get(f"/cart/{query}")
    request.session = SessionStore()
    request.user = user or AnonymousUser()
    request._messages = FallbackStorage(request)
    request.csp_nonce = nonce
    if message:
        messages.success(request, message)
    return request


def both(make_request, count: int = 2):
    context = {"cart_count": count, "csrf_token": TOKEN}
    shell = render_in_shell(make_request(), "cart/cart_detail.html", content_name="cart_body", content=BODY, context=context)
    plain = render(make_request(), "cart/cart_detail.html", {**context, "cart_body": BODY})
    return shell.content.decode(), plain.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["visitor", "customer", "pharmacist"])
def test_the_page_is_what_render_wrote(who):
    user = {"visitor": lambda: None, "customer": UserFactory, "pharmacist": lambda: make_pharmacist(email="rph@pharmacy.example")}[who]()
    for message in ("", "Removed <Baclofen> from your cart."):
        shell, plain = both(lambda: visit(user, message=message))
        assert shell == plain
        assert BODY in shell and TOKEN in shell and "nonce-of-this-response" in shell
        assert ("Removed &lt;Baclofen&gt; from your cart." in shell) == bool(message)
        assert ('href="/staff/' in shell or "Review queue" in shell) == (who == "pharmacist")


@pytest.mark.django_db
def test_one_visitor_never_gets_another_ones_header_message_token_or_nonce():
    first = UserFactory(email="first@pharmacy.example")
    context = {"cart_count": 7, "csrf_token": TOKEN}
    render_in_shell(visit(first, message="Your code SECRET1 was applied.", nonce="first-nonce"), "cart/cart_detail.html",
                    content_name="cart_body", content=BODY, context=context)
    html = render_in_shell(visit(None, nonce="second-nonce"), "cart/cart_detail.html", content_name="cart_body",
                           content=mark_safe("<p>second</p>"), context={"cart_count": 0, "csrf_token": "x" * 64}).content.decode()
    assert "SECRET1" not in html and TOKEN not in html and "first-nonce" not in html and BODY not in html
    assert "Sign in" in html and "Account</a>" not in html
    assert '<span class="cart-count">0</span>' in html and "second-nonce" in html and "<p>second</p>" in html


@pytest.mark.django_db
def test_a_query_string_is_never_kept_in_the_layout():
    html = render_in_shell(visit(query="?q=%3Cb%3Eleak"), "cart/cart_detail.html", content_name="cart_body",
                           content=BODY, context={"cart_count": 0, "csrf_token": TOKEN}).content.decode()
    html_next = render_in_shell(visit(), "cart/cart_detail.html", content_name="cart_body",
                                content=BODY, context={"cart_count": 0, "csrf_token": TOKEN}).content.decode()
    assert "leak" not in html + html_next
    assert 'name="q" placeholder="Medicine or condition" value=""' in html_next


@pytest.mark.django_db
def test_changed_settings_are_shown_at_once(settings):
    render_in_shell(visit(), "cart/cart_detail.html", content_name="cart_body", content=BODY, context={"cart_count": 0})
    settings.PHARMACY_NAME = "Hillside Pharmacy"
    html = render_in_shell(visit(), "cart/cart_detail.html", content_name="cart_body", content=BODY,
                           context={"cart_count": 0}).content.decode()
    assert "Your cart · Hillside Pharmacy" in html
