"""Product cards (listing, search, category and home pages), rendered in Python.

Why not a template: a listing page repeats its card 24 times, and through the template engine
(an ``{% include %}`` per card, another for the legal badge, a dozen variable lookups, a
``reverse()`` for the link and two ``get_FOO_display()`` per card) the cards cost about 1.5 ms of
CPU per page, a quarter of a page rendered afresh at 100,000 products; formatted here they cost
about 0.2 ms (bench/miss.py). The markup is exactly what ``_product_card.html`` produced, and is
escaped like the template engine escapes it (``html.escape``, as ``django.utils.html.escape`` does). The
legal badge still comes from ``catalog/_legal_badge.html`` (also used by the product page),
rendered once per legal class and process.

A change here also changes the page cache's code fingerprint (``page_cache.code_version`` reads
this app's ``.py`` files), so cached pages with the old cards are never served after a deploy.
"""
from __future__ import annotations

import functools
import html
import re
from collections.abc import Iterable
from urllib.parse import quote

from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import RFC3986_SUBDELIMS
from django.utils.safestring import SafeString, mark_safe

from .models import DosageForm, Product
from .templatetags.catalog_tags import money

DOSAGE_FORMS = {str(value): str(label) for value, label in DosageForm.choices}
KINDS = {str(value): str(label) for value, label in Product.Kind.choices}
# What the URL pattern's <slug:slug> accepts; anything else is left to reverse() (which refuses it).
SLUG_RE = re.compile(r"[-a-zA-Z0-9_]+\Z")
SLUG_PLACEHOLDER = "slug-placeholder"
# What the template engine's autoescape does to a plain string (django.utils.html.escape is
# html.escape(str(text)) behind a lazy-string wrapper, which costs more than the escaping here).
escape = html.escape


def capfirst(text: str) -> str:
    """The ``capfirst`` filter: the first character upper-cased."""
    return text[:1].upper() + text[1:]

CARD = """<article class="product-card">
  <h3 class="product-card-title"><a href="{url}">{name}</a></h3>
  <p class="product-card-meta">{ingredient} · {form} · {kind}</p>
  {badge}
  <p class="product-card-summary">{summary}</p>
  <p class="product-card-price">
    {price}
  </p>
</article>
"""
CONTROLLED = """
      <span class="muted">Information only, not sold online</span>
    """
FROM_PRICE = """
      from <strong>{}</strong> per pill
    """
UNAVAILABLE = """
      <span class="muted">Currently unavailable</span>
    """


@functools.lru_cache(maxsize=16)
def legal_badge(legal_class: str) -> str:
    """``catalog/_legal_badge.html`` for one legal class (it shows nothing else of the product)."""
    return render_to_string("catalog/_legal_badge.html", {"product": {"legal_class": legal_class}})


def _url_maker():
    """Product page URLs as ``reverse("catalog:product_detail")`` makes them, reversing only once.

    Reversed per call (not per process) so the script prefix of the current request applies.
    """
    before, after = reverse("catalog:product_detail", kwargs={"slug": SLUG_PLACEHOLDER}).split(SLUG_PLACEHOLDER)

    def url(product: Product) -> str:
        slug = product.slug
        if not SLUG_RE.match(slug):
            return product.get_absolute_url()
        return before + quote(slug, safe=RFC3986_SUBDELIMS + "/~:@") + after

    return url


def product_card(product: Product, *, url=None) -> str:
    """The card of one product priced by ``selectors.priced_cards`` (``from_per_pill`` set)."""
    if product.is_controlled:
        price = CONTROLLED
    elif product.from_per_pill is not None:
        price = FROM_PRICE.format(escape(money(product.from_per_pill)))
    else:
        price = UNAVAILABLE
    return CARD.format(
        url=escape((url or _url_maker())(product)),
        name=escape(product.name),
        ingredient=escape(capfirst(product.active_ingredient)),
        form=escape(DOSAGE_FORMS.get(product.dosage_form, product.dosage_form)),
        kind=escape(KINDS.get(product.kind, product.kind)),
        badge=legal_badge(product.legal_class),
        summary=escape(product.summary),
        price=price,
    )


def product_cards(products: Iterable[Product]) -> SafeString:
    """The cards of a page, one after the other, ready for ``{{ cards }}`` in a template."""
    url = _url_maker()
    return mark_safe("".join(product_card(product, url=url) for product in products))  # noqa: S308 - escaped above
