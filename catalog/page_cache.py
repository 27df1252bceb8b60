"""Whole-page cache of the public catalog pages, with exact invalidation and per-visitor holes.

Why: a catalog page is the same HTML for every visitor until staff change something, and
rendering it (queries built by the ORM, some forty model objects, templates) costs many times
what serving a stored copy does (figures: docs/performance.md). Three parts make that safe:

**One catalog generation.** Every stored page carries the generation it was rendered under; a page
is served only while the shared generation (in the default cache: Redis in production, so every
web server sees it at once) is unchanged. Any write to a catalog table replaces the generation
*after its transaction commits* (``catalog_changed``): model ``save``/``delete`` and the
querysets' ``update``/``delete``/``bulk_*`` of every catalog model call it (``CatalogModel``,
``CatalogQuerySet``), so the admin, its inlines and bulk actions, the CSV import, the price
services and the stock moves of checkout (``PackageTier.objects.filter(...).update(stock=...)``)
are all covered without each remembering to. Code that writes with raw SQL (``generate_catalog``'s
``COPY``) calls ``catalog_changed`` itself. The generation is a random token, not a counter, so a
Redis restart or eviction can never bring an old page back to life. Pages are rendered under the
generation read *before* their queries, so an edit committed mid-render leaves that copy stale
at once. Each copy also expires after ``CATALOG_PAGE_CACHE_SECONDS`` (a safety net only), and
page keys carry a fingerprint of the templates (``code_version``), so a deploy starts afresh.

**Holes for what belongs to the visitor.** A stored page holds placeholders instead of the CSRF
token, the CSP nonce and the ``{% visitor "part.html" %}`` parts of ``base.html`` (the
signed-in header, the cart count, flash messages). Each response fills them for its own visitor:
a freshly masked CSRF token (so no-JS add-to-cart forms work, and the token differs in every
response: Django's BREACH mitigation), this response's nonce, this visitor's header. During the
render that is stored, ``user`` is anonymous and ``messages`` empty, so nothing personal can be
baked into the shared copy even by a template that forgets to use ``{% visitor %}``.

**Conditional GET.** The ETag is a hash of the stored copy and of what was filled in for this
visitor (header, messages, CSRF secret), so a 304 is only sent when the visitor would get the very
same page. A 304 carries no CSP header, so the browser keeps the one that matches its copy's nonce.

**Compression** is Django's: the catalog views are wrapped in ``gzip_page`` (``GZipMiddleware``,
whose random gzip filename field since Django 4.2 mitigates BREACH for the CSRF token compressed
with a reflected search query), applied to the filled page. Behind a reverse proxy that
compresses, the decorator can go (``docs/performance.md``).

Private pages (cart, checkout, orders, accounts, staff) are never stored: only the views
decorated with ``cached_catalog_page`` are, and only their GET/HEAD answers with status 200.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import re
import secrets
import threading
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from urllib.parse import urlencode

from csp.decorators import csp_exempt
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import AnonymousUser
from django.core.cache import caches
from django.db import DEFAULT_DB_ALIAS, models, router, transaction
from django.http import HttpResponse, HttpResponseNotModified, QueryDict
from django.middleware.csrf import get_token
from django.template.loader import render_to_string
from django.utils.cache import patch_vary_headers
from django.utils.http import parse_etags

logger = logging.getLogger(__name__)

GENERATION_KEY = "catalog:generation"
# Replaced only when the set of products, their names, categories or flags may have changed.
PRODUCTS_GENERATION_KEY = "catalog:generation:products"
PRODUCT_SET_MODELS = {"catalog.product", "catalog.category"}
# Replaced when a product's stored lowest per-pill price may have changed (or the products did).
PRICES_GENERATION_KEY = "catalog:generation:prices"
PAGE_KEY_PREFIX = "catalog:page:"
_RENDER_FLAG = "_catalog_page_cache_render"
_local = threading.local()


def _secret_marker(name: str) -> str:
    """A placeholder nobody can type into a page (e.g. through the search box): derived from SECRET_KEY.

    Letters and digits only, so HTML escaping leaves it intact; the same on every server.
    """
    digest = hmac.new(
        settings.SECRET_KEY.encode(), f"catalog-page-cache:{name}".encode(), hashlib.sha256
    )
    return f"pcph{digest.hexdigest()[:24]}"


class _Markers:
    """Computed on first use (settings may be overridden in tests)."""

    @property
    def csrf(self) -> str:
        return _secret_marker("csrf")

    @property
    def nonce(self) -> str:
        return _secret_marker("nonce")

    @property
    def visitor(self) -> str:
        return _secret_marker("visitor")


MARKERS = _Markers()


def _cache():
    return caches[getattr(settings, "CATALOG_PAGE_CACHE_ALIAS", "default")]


def _timeout() -> int:
    return getattr(settings, "CATALOG_PAGE_CACHE_SECONDS", 600)


def enabled() -> bool:
    return getattr(settings, "CATALOG_PAGE_CACHE", True)


# --- Invalidation -----------------------------------------------------------------------------


#: Generations this process could not replace while the cache was unreachable. The first read
#: that reaches the cache again replaces them, so a change saved during an outage does not leave
#: the pages stored before it on show once Redis is back (``_read``).
_unreplaced: set[str] = set()


def _replace(*keys: str) -> None:
    try:
        _cache().set_many(
            {key: secrets.token_hex(8) for key in {*keys, *_unreplaced}}, timeout=None
        )
    except Exception:  # a cache outage must not fail the write
        _unreplaced.update(keys)
        logger.exception(
            "Could not replace the catalog generation; replaced when the cache answers again"
        )
    else:
        _unreplaced.clear()


def _new_generation() -> None:
    _replace(GENERATION_KEY)


def _new_prices_generation() -> None:
    _replace(GENERATION_KEY, PRICES_GENERATION_KEY)


def _new_products_generation() -> None:
    _replace(GENERATION_KEY, PRICES_GENERATION_KEY, PRODUCTS_GENERATION_KEY)


#: Each replacement also does the ones before it in this list.
_REPLACEMENTS = (_new_generation, _new_prices_generation, _new_products_generation)


def catalog_changed(
    *, using: str = DEFAULT_DB_ALIAS, products: bool = True, prices: bool = False
) -> None:
    """Retire every stored catalog page; called for every write to a catalog table.

    ``products=False`` says the set of products, their names, categories and published flags are
    unchanged (a price, stock or leaflet edit): the product counts and listing indexes computed
    by ``memoize(..., products_only=True)`` stay valid, only the pages are retired. ``prices=True``
    (with ``products=False``) says stored lowest prices may have changed: the price order's memo
    (``memoize(..., prices_only=True)``) is retired too (``catalog.lowest_prices``).

    The generation is replaced once the transaction commits (at once outside one): that is the
    replacement that matters, since until then other servers still see the old rows. Many writes
    in one transaction (a bulk price change, a CSV import) replace it once: each write schedules a
    callback, and the first to run after the commit covers every write counted before it
    (``_replace_after_commit``); Django drops the callbacks of a rolled-back savepoint.

    Inside a transaction it is also replaced at once if this thread rendered a page since its last
    write (or never wrote), for pages rendered *by this transaction's own connection* before it
    commits (they can see its uncommitted rows: a view that writes then renders, or a test, whose
    transaction never commits).
    """
    level = 2 if products else 1 if prices else 0
    _local.writes = count = getattr(_local, "writes", 0) + 1
    if getattr(_local, "rendered", True) and not transaction.get_autocommit(using=using):
        _local.rendered = False
        _REPLACEMENTS[level]()
    # Outside a transaction Django runs the callback at once.
    transaction.on_commit(
        functools.partial(_replace_after_commit, level, count), using=using, robust=True
    )


def _replace_after_commit(level: int, count: int) -> None:
    """Replace the generation(s) of ``level`` unless a callback of this commit already covered write ``count``."""
    covered = _local.__dict__.setdefault("covered", [0, 0, 0])
    if covered[level] >= count:
        return
    _REPLACEMENTS[level]()
    for lower in range(level + 1):
        covered[lower] = _local.writes


def _changes_products(model) -> bool:
    return model._meta.label_lower in PRODUCT_SET_MODELS


class CatalogQuerySet(models.QuerySet):
    """Bulk writes of a catalog table retire the cached pages too (``update`` moves stock, for one)."""

    def update(self, **kwargs):
        catalog_changed(using=self.db, products=_changes_products(self.model))
        return super().update(**kwargs)

    def delete(self):
        catalog_changed(using=self.db, products=True)  # cascades may reach products
        return super().delete()

    def bulk_create(self, *args, **kwargs):
        catalog_changed(using=self.db, products=_changes_products(self.model))
        return super().bulk_create(*args, **kwargs)

    def bulk_update(self, *args, **kwargs):
        catalog_changed(using=self.db, products=_changes_products(self.model))
        return super().bulk_update(*args, **kwargs)


class CatalogModel(models.Model):
    """Base of every model a catalog page shows: saving or deleting one retires the cached pages."""

    objects = CatalogQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        catalog_changed(
            using=kwargs.get("using") or router.db_for_write(type(self), instance=self),
            products=_changes_products(type(self)),
        )
        return super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        catalog_changed(
            using=kwargs.get("using") or router.db_for_write(type(self), instance=self),
            products=_changes_products(type(self)),
        )
        return super().delete(*args, **kwargs)


def current_generation(key: str = GENERATION_KEY) -> str | None:
    try:
        return _cache().get(key)
    except Exception:
        logger.exception("Catalog page cache unreachable")
        return None


def memoize(name: str, compute, *, products_only: bool = False, prices_only: bool = False):
    """``compute()`` once per catalog generation, shared by all servers (category and result counts).

    Why: counting the published products of each category, or the matches of a search, reads a
    share of the catalog, so its cost grows with the catalog. With ``products_only`` the value is
    kept until the products themselves change (not a price or a stock move); with ``prices_only``
    until they or a stored lowest per-pill price may have changed (not a stock move, nor any
    write that cannot change a lowest price). Computed afresh if the cache is down.
    """
    generation_key = (
        PRODUCTS_GENERATION_KEY
        if products_only
        else PRICES_GENERATION_KEY
        if prices_only
        else GENERATION_KEY
    )
    generation = current_generation(generation_key) or _ensure_generation(generation_key)
    if generation is None:
        return compute()
    key = (
        f"catalog:memo:{generation}:"
        + hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()
    )
    try:
        found = _cache().get(key)
    except Exception:  # noqa: BLE001
        found = None
    if found is not None:
        return found
    _local.rendered = True  # read inside this transaction: its later writes must replace it
    value = compute()
    try:
        _cache().set(key, value, timeout=_timeout())
    except Exception:
        logger.exception("Could not store %s", name)
    return value


# --- Template hooks ---------------------------------------------------------------------------


def is_cacheable_render(context) -> bool:
    request = context.get("request")
    return bool(request is not None and getattr(request, _RENDER_FLAG, False))


def visitor_marker(template_name: str) -> str:
    return f"<!--{MARKERS.visitor}:{template_name}-->"


def context_processor(request) -> dict:
    """While a page is rendered for the shared cache: placeholders and nothing personal."""
    if not getattr(request, _RENDER_FLAG, False):
        return {}
    return {"csrf_token": MARKERS.csrf, "user": AnonymousUser(), "perms": {}, "messages": ()}


@contextmanager
def _nonce_marker(request):
    """``request.csp_nonce`` reads as the nonce marker meanwhile (if django-csp gave the request one)."""
    saved = request.__dict__.get("csp_nonce")
    if saved is not None:
        request.csp_nonce = MARKERS.nonce
    try:
        yield
    finally:
        if saved is not None:
            request.csp_nonce = saved


def _render_visitor_parts(request, template_names: list[str]) -> list[str]:
    """Each ``{% visitor %}`` part a page names, rendered for this request (markers for the token and
    the nonce, filled in with the rest of the page)."""
    with _nonce_marker(request):
        return [
            render_to_string(name, {"csrf_token": MARKERS.csrf}, request=request)
            for name in template_names
        ]


# --- Serving ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredPage:
    generation: str
    html: str
    content_type: str
    digest: str


@functools.cache
def code_version() -> str:
    """A fingerprint of the templates and of this app's code, computed once per process.

    In the page key, so that after a deploy (or during a rolling one) a server never serves a page
    rendered by other templates, nor fills the ``{% visitor %}`` parts of another ``base.html``.
    """
    digest = hashlib.sha256()
    roots = [Path(d) for engine in settings.TEMPLATES for d in engine.get("DIRS", [])]
    roots.append(Path(__file__).resolve().parent)
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.suffix in (".html", ".py", ".txt"):
                digest.update(str(path.relative_to(root)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


_INDENT_RE = re.compile(r"\n\s+")


def compact(html: str) -> str:
    """Drop the templates' indentation and blank lines from a page before it is stored (~12% fewer bytes).

    Browsers render a run of whitespace between or inside elements as one space whatever it holds,
    so a newline in place of a newline plus indentation renders the same. Pages with ``<pre>`` or
    ``<textarea>`` (where whitespace is content) are stored as they are; the catalog has none.
    """
    if "<pre" in html or "<textarea" in html:
        return html
    return _INDENT_RE.sub("\n", html)


@functools.cache
def _hole_re(csrf: str, nonce: str, visitor: str) -> re.Pattern:
    return re.compile(
        f"({re.escape(csrf)})|({re.escape(nonce)})|<!--{re.escape(visitor)}:([^>]*)-->"
    )


# Kinds of hole in a stored page.
CSRF, NONCE, VISITOR = "csrf", "nonce", "visitor"


class Layout:
    """A stored page cut at its holes: static text, and what goes between (token, nonce, visitor part)."""

    def __init__(self, html: str):
        pattern = _hole_re(MARKERS.csrf, MARKERS.nonce, MARKERS.visitor)
        self.static: list[str] = []
        self.holes: list[tuple[str, str | None]] = []
        position = 0
        for match in pattern.finditer(html):
            self.static.append(html[position : match.start()])
            if match.group(1):
                self.holes.append((CSRF, None))
            elif match.group(2):
                self.holes.append((NONCE, None))
            else:
                self.holes.append((VISITOR, match.group(3)))
            position = match.end()
        self.static.append(html[position:])
        self.visitor_parts = [name for kind, name in self.holes if kind == VISITOR]
        self.has_csrf = any(kind == CSRF for kind, _ in self.holes)
        self.has_nonce = any(kind == NONCE for kind, _ in self.holes)


@dataclass
class LocalPage:
    """This process's copy of a stored page (saves fetching ~40 KB from Redis per request)."""

    stored: StoredPage
    fresh: tuple[list[str], str] | None = (
        None  # the visitor parts for a fresh visitor, and their digest text
    )
    _layout: Layout | None = None

    @property
    def layout(self) -> Layout:
        if self._layout is None:
            self._layout = Layout(self.stored.html)
        return self._layout


LOCAL_PAGES_MAX = 512
_local_pages: OrderedDict[str, LocalPage] = OrderedDict()
_local_pages_lock = threading.Lock()


def _local_get(key: str, generation: str | None) -> LocalPage | None:
    with _local_pages_lock:
        local = _local_pages.get(key)
        if local is None or generation is None or local.stored.generation != generation:
            return None
        _local_pages.move_to_end(key)
        return local


def _local_put(key: str, stored: StoredPage) -> LocalPage:
    local = LocalPage(stored=stored)
    with _local_pages_lock:
        _local_pages[key] = local
        _local_pages.move_to_end(key)
        while len(_local_pages) > LOCAL_PAGES_MAX:
            _local_pages.popitem(last=False)
    return local


def page_key(request, query: str = "") -> str:
    """The stored copy's key: the page's address with only the query the page reads (normalised)."""
    raw = f"{request.scheme}://{request.get_host()}{request.path}?{query}"
    return (
        f"{PAGE_KEY_PREFIX}{code_version()}:"
        + hashlib.sha256(raw.encode("utf-8", "surrogateescape")).hexdigest()
    )


def page_query(request, params) -> QueryDict:
    """The query string as the page understands it: ``params(request.GET)`` (a dict of the
    parameters the page reads, each value in one spelling), nothing else; empty without ``params``."""
    return QueryDict(urlencode(sorted((params(request.GET) if params else {}).items())))


def _read(key: str) -> tuple[str | None, LocalPage | None]:
    """The shared generation (always asked: that is what makes invalidation exact across servers),
    and the page: this process's copy if it is of that generation, else the shared one."""
    if _unreplaced:
        _replace()  # the cache is back after a change this process could not announce
        if _unreplaced:
            return None, None
    try:
        generation = _cache().get(GENERATION_KEY)
        local = _local_get(key, generation)
        if local is not None:
            return generation, local
        stored = _cache().get(key) if generation is not None else None
    except Exception:  # serve uncached while the cache is down
        logger.exception("Catalog page cache unreachable")
        return None, None
    if stored is None or stored.generation != generation:
        return generation, None
    return generation, _local_put(key, stored)


def _ensure_generation(key: str = GENERATION_KEY) -> str | None:
    try:
        cache = _cache()
        cache.add(key, secrets.token_hex(8), timeout=None)
        return cache.get(key)
    except Exception:
        logger.exception("Catalog page cache unreachable")
        return None


def _render_for_cache(view, request, args, kwargs):
    """Run the view with placeholders in place of everything per-visitor."""
    _local.rendered = True
    setattr(request, _RENDER_FLAG, True)
    try:
        with _nonce_marker(request):
            return view(request, *args, **kwargs)
    finally:
        delattr(request, _RENDER_FLAG)


def _is_fresh_visitor(request) -> bool:
    """No session, not signed in, no message waiting: the visitor parts are the same for all such visitors."""
    if settings.SESSION_COOKIE_NAME in request.COOKIES:
        return False
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return False
    return len(messages.get_messages(request)) == 0


def _personalise(request, html: str, local: LocalPage | None = None) -> tuple[str, str]:
    """The page filled for this visitor, and a digest of what was filled (for the ETag).

    For a fresh visitor (``_is_fresh_visitor``) the visitor parts are rendered once per process
    and page, and kept with the process-local copy; only the token and the nonce differ.
    """
    layout = local.layout if local is not None else Layout(html)
    fresh = local is not None and _is_fresh_visitor(request)
    if fresh and local.fresh is not None:
        parts, parts_text = local.fresh
    else:
        parts = _render_visitor_parts(request, layout.visitor_parts)
        parts_text = "\x00".join(parts)
        if fresh:
            local.fresh = (parts, parts_text)
    token = get_token(request) if layout.has_csrf or MARKERS.csrf in parts_text else ""
    nonce = (
        str(getattr(request, "csp_nonce", ""))
        if layout.has_nonce or MARKERS.nonce in parts_text
        else ""
    )
    out, next_part = [layout.static[0]], iter(parts)
    for (kind, _), text in zip(layout.holes, layout.static[1:]):
        if kind == CSRF:
            out.append(token)
        elif kind == NONCE:
            out.append(nonce)
        else:
            out.append(next(next_part).replace(MARKERS.csrf, token).replace(MARKERS.nonce, nonce))
        out.append(text)
    # The CSRF secret (not the masked token, which changes every time) and the visitor parts.
    csrf_secret = request.META.get("CSRF_COOKIE") or ""
    digest = hashlib.sha256(f"{csrf_secret}\x00{parts_text}".encode()).hexdigest()
    return "".join(out), digest


def _etag(stored_digest: str, visitor_digest: str) -> str:
    digest = hashlib.sha256(f"{stored_digest}:{visitor_digest}".encode()).hexdigest()[:32]
    return f'W/"{digest}"'


def _finish(request, response: HttpResponse, etag: str | None) -> HttpResponse:
    # The body holds this visitor's token and cart: browsers may keep it, shared caches must not,
    # and the browser asks again every time (a 304 when nothing changed).
    response["Cache-Control"] = "private, no-cache"
    patch_vary_headers(response, ("Cookie",))
    if etag:
        response["ETag"] = etag
    return response


@csp_exempt()
def _not_modified(request, etag: str) -> HttpResponse:
    """A 304 carries no CSP header, so the browser keeps the one that matches its copy's nonce."""
    return _finish(request, HttpResponseNotModified(), etag)


def cached_catalog_page(view=None, *, params=None):
    """Serve ``view``'s GET/HEAD answers from the shared page cache (see the module docstring).

    ``params(request.GET)`` names the query parameters the page reads, each normalised to one
    spelling (a value the page treats like the default left out): the key holds only those, so a
    scanner's junk parameters or spellings cannot fill the cache with copies of one page. The view
    then runs with that query as ``request.GET``, so the stored copy is exactly what its key says
    (no junk echoed into a link or the search box shown to the next visitor). Without ``params``
    the page reads no query string at all.
    """
    if view is None:
        return functools.partial(cached_catalog_page, params=params)

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method not in ("GET", "HEAD") or not enabled():
            return view(request, *args, **kwargs)
        original_get, request.GET = request.GET, page_query(request, params)
        try:
            return _serve(view, request, args, kwargs)
        finally:
            request.GET = original_get

    return wrapper


def _serve(view, request, args, kwargs) -> HttpResponse:
    """One GET/HEAD of a cached page, ``request.GET`` already the page's own query."""
    key = page_key(request, request.GET.urlencode())
    generation, local = _read(key)
    if local is None:
        generation = generation or _ensure_generation()
        response = _render_for_cache(view, request, args, kwargs)
        if getattr(response, "streaming", False) or not isinstance(response, HttpResponse):
            return response
        html = response.content.decode(response.charset or "utf-8")
        if response.status_code != 200 or generation is None:
            # Not stored (a redirect, an error page): still filled for this visitor.
            response.content = _personalise(request, html)[0]
            return response
        html = compact(html)
        stored = StoredPage(
            generation=generation,
            html=html,
            content_type=response["Content-Type"],
            digest=hashlib.sha256(html.encode()).hexdigest(),
        )
        try:
            _cache().set(key, stored, timeout=_timeout())
        except Exception:
            logger.exception("Could not store a catalog page")
        local = _local_put(key, stored)
        request.catalog_page_cache = "miss"
    else:
        request.catalog_page_cache = "hit"
    body, visitor_digest = _personalise(request, local.stored.html, local)
    etag = _etag(local.stored.digest, visitor_digest)
    if_none_match = request.META.get("HTTP_IF_NONE_MATCH")
    if if_none_match and _weak_match(etag, if_none_match):
        return _not_modified(request, etag)
    response = HttpResponse(body, content_type=local.stored.content_type)
    response["X-Catalog-Cache"] = request.catalog_page_cache
    return _finish(request, response, etag)


def _weak_match(etag: str, header: str) -> bool:
    if header.strip() == "*":
        return True
    strip = lambda tag: tag.removeprefix("W/")
    return any(strip(tag) == strip(etag) for tag in parse_etags(header))
