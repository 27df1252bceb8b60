"""The page cache's gzip pieces (catalog.page_cache.Layout): any fills give a valid gzip of the filled page.

The pieces are deflate blocks compressed ahead with the page text before them as dictionary; a
wrong length assumption would not fail to decompress, it would silently show wrong text. So this
checks byte equality with the plain page over random pages and fills.
"""
from __future__ import annotations

import gzip
import string

from django.utils.crypto import get_random_string
from hypothesis import given, settings, strategies as st

from catalog import page_cache
from catalog.page_cache import CSRF_TOKEN_LENGTH, MARKERS, Layout, Personalised

TEXT = st.text(alphabet=string.ascii_letters + string.digits + " <>/=\"'\n\t-éü€", max_size=3000)
HOLE = st.sampled_from(["csrf", "nonce", "visitor"])


@settings(max_examples=60, deadline=None)
@given(
    texts=st.lists(TEXT, min_size=1, max_size=12),
    holes=st.lists(HOLE, max_size=11),
    visitor_fills=st.lists(TEXT, max_size=11),
    nonce_length=st.integers(min_value=16, max_value=32),
    token_char=st.sampled_from("aZ9"),
)
def test_gzip_pieces_decompress_to_the_filled_page(texts, holes, visitor_fills, nonce_length, token_char):
    holes = holes[: len(texts) - 1]
    markers = {"csrf": MARKERS.csrf, "nonce": MARKERS.nonce}
    html = texts[0]
    for index, (kind, text) in enumerate(zip(holes, texts[1:])):
        html += (markers[kind] if kind in markers else page_cache.visitor_marker("base.html", index)) + text
    layout = Layout(html)
    fills = []
    for index, (kind, _) in enumerate(layout.holes):
        if kind == "csrf":
            fills.append((token_char * CSRF_TOKEN_LENGTH).encode())
        elif kind == "nonce":
            fills.append(b"N" * nonce_length)
        else:
            fills.append(visitor_fills[index % len(visitor_fills)].encode() if visitor_fills else b"")
    page = Personalised(layout=layout, fills=fills, visitor_digest="", nonce_length=nonce_length)
    assert gzip.decompress(page.gzip_body()) == page.body()
    # Visitor parts' compressed blocks kept and used again give the same page.
    reused = Personalised(layout=layout, fills=fills, visitor_digest="", nonce_length=nonce_length,
                          reusable=tuple(kind == "visitor" for kind, _ in layout.holes))
    assert gzip.decompress(reused.gzip_body()) == gzip.decompress(reused.gzip_body()) == page.body()


def test_a_fill_of_another_length_is_not_compressed_from_pieces():
    layout = Layout(f"<form>{MARKERS.csrf}</form>" * 3)
    page = Personalised(layout=layout, fills=[b"short"] * 3, visitor_digest="", nonce_length=22)
    assert page.gzip_body() is None
    assert page.body() == b"<form>short</form>" * 3


def test_repeated_markup_compresses_about_as_well_as_the_whole_page():
    """Each piece sees the rows before it (its dictionary), so 40 similar rows do not cost 40 times.

    Allowed on top of whole-page gzip: each token sent as is (a stored block) plus a few bytes of
    block framing per piece; without the dictionaries this page would come out about twice as large.
    """
    row = ('<tr role="row"><th scope="row" class="col-pack"><span class="pack-qty">{n} pills</span></th>'
           '<td role="cell" class="col-per-pill"><strong>$0.{n}</strong><span class="unit"> per pill</span></td>'
           '<td role="cell" class="col-action"><form class="add-to-cart" method="post" action="/cart/add/" '
           'hx-post="/cart/add/" hx-target="#cart-feedback"><input type="hidden" name="csrfmiddlewaretoken" '
           'value="{token}"><input type="hidden" name="tier_id" value="{n}"><button type="submit">Add to cart'
           '<span class="visually-hidden"> (Baclofen 10mg, {n} pills)</span></button></form></td></tr>\n')
    html = "".join(row.format(n=n, token=MARKERS.csrf) for n in range(10, 50))
    fills = [get_random_string(CSRF_TOKEN_LENGTH).encode() for _ in range(40)]
    page = Personalised(layout=Layout(html), fills=fills, visitor_digest="", nonce_length=22)
    assert gzip.decompress(page.gzip_body()) == page.body()
    whole = len(gzip.compress(page.body()))
    assert len(page.gzip_body()) < whole + 40 * (5 + CSRF_TOKEN_LENGTH + 8)
    independent = sum(len(gzip.compress(piece)) for piece in page.layout.static)
    assert len(page.gzip_body()) < independent / 2 + 40 * (5 + CSRF_TOKEN_LENGTH)
