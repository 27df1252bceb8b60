"""Customer-facing catalog pages. Thin: the queries and figures come from ``catalog.selectors``.

Home, listing (search, category) and product pages are served from the shared page cache
(``catalog.page_cache``): exact invalidation on every catalog write, per-visitor holes for the
header, messages, CSRF token and CSP nonce, ETags. HTML is gzipped for clients that ask (see
docs/performance.md: BREACH).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.gzip import gzip_page
from django.views.decorators.http import require_safe

from . import page_cache, selectors
from .page_cache import cached_catalog_page

PRODUCTS_PER_PAGE = 24
#: The listing's sort orders (``?sort=``): name by default, or the lowest price per pill.
SORTS = {"name": "Name (A to Z)", "price": "Lowest price per pill"}


def absolute_url(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


@require_safe
@gzip_page
@cached_catalog_page
def home(request):
    featured = selectors.featured_products()
    return render(
        request,
        "catalog/home.html",
        {
            "categories": [c for c in selectors.categories_with_counts() if c.published_count],
            "featured": featured,
            "canonical_url": absolute_url(reverse("catalog:home")),
        },
    )


#: Stands for any value the listing does not know (a category or filter that does not exist): the
#: page shows the same "could not find" note for all of them. Not a slug, so never a real one.
UNKNOWN = "?"


def _listing_page_number(value: str | None) -> str | None:
    """The page number as Django's paginator reads it (``int()``), in one spelling: None for page
    1 (also what a word gives), "0" for any number past the last page (or below 1): those all show
    the last page, and the last page of any filter is at most that of all published products."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    if number == 1:
        return None
    published = sum(
        c.published_count for c in selectors.categories_with_counts()
    )  # every product has one
    ceiling = max(1, -(-published // PRODUCTS_PER_PAGE))
    return str(number) if 1 < number <= ceiling else "0"


def listing_query(query) -> dict[str, str]:
    """The query parameters ``product_list`` reads, each normalised (see ``cached_catalog_page``).

    q: stripped, and past the length the listing searches cut to it plus "…" (it says it cut it);
    category and rx: a known value, or ``UNKNOWN``; sort: "price" or left out (the name order is
    the default); page: see ``_listing_page_number``. Empty values and all other names are left out.
    """
    kept: dict[str, str] = {}
    q = query.get("q", "").strip()
    if len(q) > selectors.SEARCH_MAX_LENGTH:
        q = (
            q[: selectors.SEARCH_MAX_LENGTH] + "…"
        )  # any longer search: the same cut and the same note
    if q:
        kept["q"] = q
    category = query.get("category", "").strip()
    if category:
        known = {c.slug for c in selectors.categories_with_counts()}
        kept["category"] = category if category in known else UNKNOWN
    rx = query.get("rx", "").strip()
    if rx:
        kept["rx"] = rx if rx in selectors.RX_FILTERS else UNKNOWN
    if query.get("sort", "").strip() == "price":
        kept["sort"] = "price"
    page = _listing_page_number(query.get("page"))
    if page is not None:
        kept["page"] = page
    return kept


@require_safe
@gzip_page
@cached_catalog_page(params=listing_query)
def product_list(request):
    """The listing with its filters. Unknown filter values are explained, never an error page."""
    categories = selectors.categories_with_counts()
    problems: list[str] = []

    q = request.GET.get("q", "").strip()
    if len(q) > selectors.SEARCH_MAX_LENGTH:
        problems.append(
            f"Searches are limited to {selectors.SEARCH_MAX_LENGTH} characters; we used the start of yours."
        )
        q = q[: selectors.SEARCH_MAX_LENGTH]

    category_slug = request.GET.get("category", "").strip()
    category = next((c for c in categories if c.slug == category_slug), None)
    if category_slug and category is None:
        problems.append("We could not find that category, so all categories are shown.")

    rx = request.GET.get("rx", "").strip()
    if rx and rx not in selectors.RX_FILTERS:
        problems.append("Unknown prescription filter, so all medicines are shown.")
        rx = ""

    sort = request.GET.get("sort", "").strip()
    if sort not in SORTS:
        sort = "name"
    queryset = selectors.product_listing(q=q, category=category, rx=rx)
    # The total and the page marks of these filters, kept until the products (or, by price, their prices) change.
    count_key = urlencode({"q": q, "category": category.slug if category else "", "rx": rx})
    if sort == "price":
        # Cheapest pill first (the stored lowest of a product's active packs); products with no price last.
        page = selectors.price_sorted_page(
            queryset,
            number=request.GET.get("page"),
            per_page=PRODUCTS_PER_PAGE,
            count_key=count_key,
        )
    else:
        page = selectors.listing_page(
            queryset,
            number=request.GET.get("page"),
            per_page=PRODUCTS_PER_PAGE,
            count_key=count_key,
        )

    products = page.object_list

    # Searches and filtered views point search engines at the plain listing (or the category).
    canonical_params = {"category": category.slug} if category else {}
    return render(
        request,
        "catalog/product_list.html",
        {
            "page": page,
            "products": products,
            "categories": [c for c in categories if c.published_count],
            "category": category,
            "q": q,
            "rx": rx,
            "rx_choices": [(key, label) for key, (label, _classes) in selectors.RX_FILTERS.items()],
            "rx_label": selectors.RX_FILTERS[rx][0] if rx else "",
            "sort": sort,
            "sort_choices": list(SORTS.items()),
            "problems": problems,
            "canonical_url": absolute_url(
                reverse("catalog:product_list")
                + (f"?{urlencode(canonical_params)}" if canonical_params else "")
            ),
        },
    )


@require_safe
@gzip_page
@cached_catalog_page(shows=page_cache.product_page_generations)
def product_detail(request, slug: str):
    product = selectors.product_detail_queryset().filter(slug=slug).first()
    if product is None:
        raise Http404("No published medicine with this address.")
    page = selectors.product_page(product)
    canonical_url = absolute_url(product.get_absolute_url())
    return render(
        request,
        "catalog/product_detail.html",
        {
            "product": product,
            "page": page,
            "canonical_url": canonical_url,
            "structured_data": selectors.product_structured_data(page, url=canonical_url),
        },
    )


@require_safe
def robots_txt(request):
    lines = [
        "User-agent: *",
        "Disallow: /admin/",
        "Disallow: /accounts/",
        "Disallow: /cart/",
        "Disallow: /checkout/",
        "Disallow: /orders/",
        "",
        f"Sitemap: {request.build_absolute_uri(reverse('sitemap'))}",
        "",
    ]
    return HttpResponse("\n".join(lines), content_type="text/plain; charset=utf-8")
