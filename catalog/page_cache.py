"""Whole-page cache of the public catalog pages, with exact invalidation and per-visitor holes.

Why: a catalog page is the same HTML for every visitor until staff change something, and
rendering it costs ~10 ms of CPU (queries built by the ORM, ~40 model objects, templates), while
serving a stored copy costs well under 1 ms. Three parts make that safe:

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
token, the CSP nonce and the ``{% visitor %}…{% endvisitor %}`` parts of ``base.html`` (the
signed-in header, the cart count, flash messages). Each response fills them for its own visitor:
a freshly masked CSRF token (so no-JS add-to-cart forms work, and the token differs in every
response: Django's BREACH mitigation), this response's nonce, this visitor's header. During the
render that is stored, ``user`` is anonymous and ``messages`` empty, so nothing personal can be
baked into the shared copy even by a template that forgets to use ``{% visitor %}``.

**Conditional GET.** The ETag is a hash of the stored copy and of what was filled in for this
visitor (header, messages, CSRF secret), so a 304 is only sent when the visitor would get the very
same page. A 304 carries no CSP header, so the browser keeps the one that matches its copy's nonce.

Private pages (cart, checkout, orders, accounts, staff) are never stored: only the views
decorated with ``cached_catalog_page`` are, and only their GET/HEAD answers with status 200. The
cart page uses the same holes for its *layout* only (``render_in_shell``: ``base.html`` rendered
once per process with nothing personal in it, the cart filled in per request; nothing shared).
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import re
import secrets
import struct
import threading
import weakref
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from functools import wraps

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.cache import caches
from django.core.signals import setting_changed
from django.db import DEFAULT_DB_ALIAS, connections, models, router, transaction
from django.http import HttpResponse, HttpResponseNotModified, QueryDict
from django.middleware.csrf import get_token
from django.template import Node, engines
from django.template.context import make_context
from django.template.loader import get_template, render_to_string
from django.urls import get_script_prefix
from django.utils import translation
from django.utils.safestring import mark_safe
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
    digest = hmac.new(settings.SECRET_KEY.encode(), f"catalog-page-cache:{name}".encode(), hashlib.sha256)
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

    @property
    def content(self) -> str:
        return _secret_marker("content")


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
        _cache().set_many({key: secrets.token_hex(8) for key in {*keys, *_unreplaced}}, timeout=None)
    except Exception:  # noqa: BLE001 - a cache outage must not fail the write
        _unreplaced.update(keys)
        logger.exception("Could not replace the catalog generation; replaced when the cache answers again")
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


def catalog_changed(*, using: str = DEFAULT_DB_ALIAS, products: bool = True, prices: bool = False) -> None:
    """Retire every stored catalog page; called for every write to a catalog table.

    ``products=False`` says the set of products, their names, categories and published flags are
    unchanged (a price, stock or leaflet edit): the product counts and listing indexes computed
    by ``memoize(..., products_only=True)`` stay valid, only the pages are retired. ``prices=True``
    (with ``products=False``) says stored lowest prices may have changed: the price order's memo
    (``memoize(..., prices_only=True)``) is retired too (``catalog.lowest_prices``).

    The generation is replaced once the transaction commits (at once outside one): that is the
    replacement that matters, since until then other servers still see the old rows. Many writes
    in one transaction (a bulk price change, a CSV import) schedule a single one: the callback is
    only added if it is not already waiting (Django drops callbacks of a rolled-back savepoint, so a
    change after a rollback schedules it again).

    Inside a transaction it is also replaced at once, for pages rendered *by this transaction's
    own connection* before it commits (they can see its uncommitted rows: a view that writes then
    renders, or a test, whose transaction never commits); later writes of the same transaction
    replace it again only if this thread rendered a page since.
    """
    replace = _new_products_generation if products else _new_prices_generation if prices else _new_generation
    connection = connections[using]
    if not connection.in_atomic_block:
        replace()
        return
    waiting = {func for _sids, func, _robust in connection.run_on_commit}
    pending = any(func in waiting for func in _REPLACEMENTS[_REPLACEMENTS.index(replace):])
    if not pending:
        transaction.on_commit(replace, using=using, robust=True)
    if not pending or getattr(_local, "rendered", False):
        _local.rendered = False
        replace()


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
        catalog_changed(using=kwargs.get("using") or router.db_for_write(type(self), instance=self),
                        products=_changes_products(type(self)))
        return super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        catalog_changed(using=kwargs.get("using") or router.db_for_write(type(self), instance=self),
                        products=_changes_products(type(self)))
        return super().delete(*args, **kwargs)


def current_generation(key: str = GENERATION_KEY) -> str | None:
    try:
        return _cache().get(key)
    except Exception:  # noqa: BLE001
        logger.exception("Catalog page cache unreachable")
        return None


def memoize(name: str, compute, *, products_only: bool = False, prices_only: bool = False):
    """``compute()`` once per catalog generation, shared by all servers (category and result counts).

    Why: counting the published products of each category, or the matches of a search, reads a
    share of the catalog; at 100,000 products that is ~100 ms. With ``products_only`` the value is
    kept until the products themselves change (not a price or a stock move); with ``prices_only``
    until they or a stored lowest per-pill price may have changed (not a stock move, nor any
    write that cannot change a lowest price). Computed afresh if the cache is down.
    """
    generation_key = (PRODUCTS_GENERATION_KEY if products_only
                      else PRICES_GENERATION_KEY if prices_only else GENERATION_KEY)
    generation = current_generation(generation_key) or _ensure_generation(generation_key)
    if generation is None:
        return compute()
    key = f"catalog:memo:{generation}:" + hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()
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
    except Exception:  # noqa: BLE001
        logger.exception("Could not store %s", name)
    return value


# --- Template hooks ---------------------------------------------------------------------------


def is_cacheable_render(context) -> bool:
    request = context.get("request")
    return bool(request is not None and getattr(request, _RENDER_FLAG, False))


def visitor_marker(template_name: str, index: int) -> str:
    return f"<!--{MARKERS.visitor}:{template_name}:{index}-->"


class VisitorNode(Node):
    """``{% visitor %}…{% endvisitor %}`` (registered by ``catalog.templatetags.page_cache``).

    It lives here, beside the cache that finds it again by type, so the template tag library
    depends on the cache and not both ways round."""

    def __init__(self, nodelist):
        self.nodelist = nodelist
        self._index = None

    def index(self) -> int:
        """This part's place among the ``{% visitor %}`` parts of its template (the same on every server)."""
        if self._index is None:
            nodes = get_template(self.origin.template_name).template.nodelist.get_nodes_by_type(VisitorNode)
            same = [i for i, node in enumerate(nodes) if node is self]  # the cached loader's own copy
            self._index = same[0] if same else next(
                i for i, node in enumerate(nodes) if node.token.lineno == self.token.lineno
            )
        return self._index

    def render(self, context):
        if is_cacheable_render(context):
            return visitor_marker(self.origin.template_name, self.index())
        return self.nodelist.render(context)


def context_processor(request) -> dict:
    """While a page is rendered for the shared cache: placeholders and nothing personal."""
    if not getattr(request, _RENDER_FLAG, False):
        return {}
    return {"csrf_token": MARKERS.csrf, "user": AnonymousUser(), "perms": {}, "messages": ()}


_visitor_nodes: dict[tuple[str, int], tuple] = {}


def _visitor_node(template_name: str, index: int):
    """The compiled ``{% visitor %}`` part a marker points at (its template may not be loaded here yet)."""
    key = (template_name, index)
    found = _visitor_nodes.get(key)
    if found is None:
        template = engines["django"].get_template(template_name).template
        found = (template, template.nodelist.get_nodes_by_type(VisitorNode)[index])
        _visitor_nodes[key] = found
    return found


def _render_visitor_parts(request, refs: list[tuple[str, int]], extra: dict | None = None) -> list[str]:
    """Each ``{% visitor %}`` part a page refers to, rendered for this request (markers for token and
    nonce). ``extra``: context the view already has (e.g. the cart page's count), over the processors'."""
    if not refs:
        return []
    parts = [_visitor_node(template_name, index) for template_name, index in refs]
    # One context for all parts: the context processors (cart count, user) run once. The token and
    # the nonce stay placeholders here too, filled with the rest of the page.
    context = make_context({**(extra or {}), "csrf_token": MARKERS.csrf}, request)
    saved_nonce = request.__dict__.get("csp_nonce")
    if saved_nonce is not None:
        request.csp_nonce = MARKERS.nonce
    rendered = []
    try:
        with context.bind_template(parts[0][0]):
            for template, node in parts:
                with context.render_context.push_state(template):
                    rendered.append(node.nodelist.render(context))
    finally:
        if saved_nonce is not None:
            request.csp_nonce = saved_nonce
    return rendered


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
def _hole_re(csrf: str, nonce: str, visitor: str, content: str) -> re.Pattern:
    return re.compile(
        f"({re.escape(csrf)})|({re.escape(nonce)})|<!--{re.escape(visitor)}:([^>]*)-->|({re.escape(content)})"
    )


# Kinds of hole in a stored page (CONTENT: only in a private page's shell, ``render_in_shell``).
CSRF, NONCE, VISITOR, CONTENT = "csrf", "nonce", "visitor", "content"

_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no name, mtime 0, unknown OS
_DEFLATE_END = b"\x03\x00"  # an empty final block
_ACCEPTS_GZIP = re.compile(r"\bgzip\b")
#: A masked CSRF token and a CSP nonce are of fixed length; the compressed pieces below rely on it.
CSRF_TOKEN_LENGTH = 64


class Layout:
    """A stored page cut at its holes: static text, and what goes between (token, nonce, visitor part).

    It also holds the static text gzip-compressed, once per process and page: then a gzip answer
    costs a CRC and a join instead of compressing ~40 KB (~0.45 ms of CPU) for every response.
    The pieces are raw deflate blocks, each ended with a sync flush (so byte-aligned and
    concatenable); each hole is sent as a *stored* (uncompressed) block. Nothing secret is ever
    compressed together with anything else, so the page's reflected text (a search query) cannot
    be used to guess a token by the compressed size (BREACH), unlike compressing the whole page.
    To keep the ratio of whole-page gzip (~8.7 vs 7.5 KB on the product page, where independently
    compressed pieces would give 13.6 KB), each piece is compressed with the page text before it as
    its dictionary, which a decompressor also has in its window. That is exact only if what
    precedes has the length the dictionary assumed: the token and nonce (fixed length) stand in
    as NUL bytes, which never occur in HTML so never match; after a visitor part (of any length)
    the dictionary starts afresh. A response whose token or nonce has another length is not
    compressed here (``gzip_page`` compresses it whole).
    """

    def __init__(self, html: str):
        pattern = _hole_re(MARKERS.csrf, MARKERS.nonce, MARKERS.visitor, MARKERS.content)
        self.static: list[bytes] = []
        self.holes: list[tuple[str, tuple[str, int] | None]] = []
        position = 0
        for match in pattern.finditer(html):
            self.static.append(html[position:match.start()].encode())
            if match.group(1):
                self.holes.append((CSRF, None))
            elif match.group(2):
                self.holes.append((NONCE, None))
            elif match.group(4):
                self.holes.append((CONTENT, None))
            else:
                template_name, _, index = match.group(3).rpartition(":")
                self.holes.append((VISITOR, (template_name, int(index))))
            position = match.end()
        self.static.append(html[position:].encode())
        self.visitor_refs = [ref for kind, ref in self.holes if kind == VISITOR]
        self.has_csrf = any(kind == CSRF for kind, _ in self.holes)
        self.has_nonce = any(kind == NONCE for kind, _ in self.holes)
        # The dictionaries stand NUL bytes in for the token and nonce: only sound if the page has none.
        self.compressible = not any(b"\x00" in text for text in self.static)
        self._gzip: tuple[list[bytes], int] | None = None
        self._lock = threading.Lock()

    def gzip_pieces(self, nonce_length: int) -> list[bytes]:
        """The static pieces compressed (see the class docstring), for nonces of ``nonce_length``."""
        found = self._gzip
        if found is not None and found[1] == nonce_length:
            return found[0]
        with self._lock:
            pieces, window = [], b""
            for index, text in enumerate(self.static):
                options = {"zdict": window[-32768:]} if window else {}
                compressor = zlib.compressobj(6, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, **options)
                pieces.append(compressor.compress(text) + compressor.flush(zlib.Z_SYNC_FLUSH) if text else b"")
                if index < len(self.holes):
                    kind = self.holes[index][0]
                    if kind in (VISITOR, CONTENT):
                        window = b""
                    else:
                        window += text + b"\x00" * (CSRF_TOKEN_LENGTH if kind == CSRF else nonce_length)
                        window = window[-32768:]
            self._gzip = (pieces, nonce_length)
            return pieces


def _stored_block(data: bytes) -> bytes:
    """``data`` as uncompressed deflate blocks (the stream is byte-aligned after a sync flush)."""
    out = []
    for start in range(0, len(data), 65535):
        chunk = data[start:start + 65535]
        out += [b"\x00", struct.pack("<HH", len(chunk), len(chunk) ^ 0xFFFF), chunk]
    return b"".join(out)


#: Visitor parts compressed, by their text: the header of every new visitor is the same, a signed-in
#: customer's repeats from page to page, and a compressor costs ~45 µs to set up. Only parts without
#: a token or nonce are kept (``Personalised.reusable``); at most this many, the oldest dropped first.
VISITOR_BLOCKS_MAX = 1024
_visitor_blocks: dict[bytes, bytes] = {}
_visitor_blocks_lock = threading.Lock()


def _visitor_part_block(data: bytes, *, reuse: bool = False) -> bytes:
    block = _visitor_blocks.get(data) if reuse else None
    if block is None:
        compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        block = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
        if reuse:
            with _visitor_blocks_lock:  # threaded workers: no insert while the oldest is looked up
                if len(_visitor_blocks) >= VISITOR_BLOCKS_MAX:
                    _visitor_blocks.pop(next(iter(_visitor_blocks), b""), None)
                _visitor_blocks[data] = block
    return block


@dataclass
class LocalPage:
    """This process's copy of a stored page (saves fetching ~40 KB from Redis per request)."""

    stored: StoredPage
    fresh: tuple[list[str], str] | None = None  # the visitor parts for a fresh visitor, and their digest text
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
    return f"{PAGE_KEY_PREFIX}{code_version()}:" + hashlib.sha256(raw.encode("utf-8", "surrogateescape")).hexdigest()


def page_query(request, params) -> QueryDict:
    """The query string as the page understands it: ``params(request.GET)`` (a dict of the
    parameters the page reads, each value in one spelling), nothing else; empty without ``params``."""
    query = QueryDict(mutable=True)
    for name, value in sorted((params(request.GET) if params else {}).items()):
        query[name] = value
    query._mutable = False
    return query


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
    except Exception:  # noqa: BLE001 - serve uncached while the cache is down
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
    except Exception:  # noqa: BLE001
        logger.exception("Catalog page cache unreachable")
        return None


def _render_for_cache(view, request, args, kwargs):
    """Run the view with placeholders in place of everything per-visitor."""
    _local.rendered = True
    saved_nonce = request.__dict__.get("csp_nonce")
    setattr(request, _RENDER_FLAG, True)
    if saved_nonce is not None:
        request.csp_nonce = MARKERS.nonce
    try:
        return view(request, *args, **kwargs)
    finally:
        delattr(request, _RENDER_FLAG)
        if saved_nonce is not None:
            request.csp_nonce = saved_nonce


def _is_fresh_visitor(request) -> bool:
    """No session, not signed in, no message waiting: the visitor parts are the same for all such visitors."""
    if settings.SESSION_COOKIE_NAME in request.COOKIES:
        return False
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return False
    storage = getattr(request, "_messages", None)
    return storage is None or len(storage) == 0


@dataclass
class Personalised:
    """A page filled for one visitor: static pieces and fills alternate, as ``Layout`` cut them."""

    layout: Layout
    fills: list[bytes]
    visitor_digest: str
    nonce_length: int
    #: Per hole: a visitor part holding no token or nonce, whose compressed block may be reused.
    reusable: tuple[bool, ...] = ()

    def body(self) -> bytes:
        static, fills = self.layout.static, self.fills
        out = [static[0]]
        for fill, text in zip(fills, static[1:]):
            out += [fill, text]
        return b"".join(out)

    def gzip_body(self) -> bytes | None:
        """The same body gzip-compressed from the layout's pieces; None if a fill breaks its assumptions."""
        holes = self.layout.holes
        if not self.layout.compressible:
            return None
        for (kind, _), fill in zip(holes, self.fills):
            if (kind == CSRF and len(fill) != CSRF_TOKEN_LENGTH) or (kind == NONCE and len(fill) != self.nonce_length):
                return None
        pieces = self.layout.gzip_pieces(self.nonce_length)
        static = self.layout.static
        out, crc, size = [_GZIP_HEADER, pieces[0]], zlib.crc32(static[0]), len(static[0])
        reusable = self.reusable or (False,) * len(holes)
        for (kind, _), fill, reuse, piece, text in zip(holes, self.fills, reusable, pieces[1:], static[1:]):
            block = _stored_block(fill) if kind in (CSRF, NONCE) else _visitor_part_block(fill, reuse=reuse)
            out += [block, piece]
            crc = zlib.crc32(text, zlib.crc32(fill, crc))
            size += len(fill) + len(text)
        out += [_DEFLATE_END, struct.pack("<II", crc, size & 0xFFFFFFFF)]
        return b"".join(out)


def _personalise(
    request,
    html: str,
    local: LocalPage | None = None,
    *,
    layout: Layout | None = None,
    content: str = "",
    extra: dict | None = None,
) -> Personalised:
    """Fill the holes for this visitor, with a digest of what was filled (for the ETag).

    For a fresh visitor (``_is_fresh_visitor``) the visitor parts are rendered once per process
    and page, and kept with the process-local copy; only the token and the nonce differ.
    ``layout``, ``content``, ``extra``: a private page's shell, its content, and context the view
    already has (its ``csrf_token`` is then the one filled in).
    """
    layout = layout or (local.layout if local is not None else Layout(html))
    fresh = local is not None and _is_fresh_visitor(request)
    if fresh and local.fresh is not None:
        parts, parts_text = local.fresh
    else:
        parts = _render_visitor_parts(request, layout.visitor_refs, extra)
        parts_text = "\x00".join(parts)
        if fresh:
            local.fresh = (parts, parts_text)
    token = nonce = ""
    if layout.has_csrf or MARKERS.csrf in parts_text:
        token = (extra or {}).get("csrf_token") or get_token(request)
    if layout.has_nonce or MARKERS.nonce in parts_text:
        nonce = str(getattr(request, "csp_nonce", ""))
    fills, reusable, next_part = [], [], iter(parts)
    for kind, _ in layout.holes:
        if kind == CSRF:
            fills.append(token.encode())
        elif kind == NONCE:
            fills.append(nonce.encode())
        elif kind == CONTENT:
            fills.append(content.encode())
        else:
            part = next(next_part)
            secret_free = MARKERS.csrf not in part and MARKERS.nonce not in part
            if token:
                part = part.replace(MARKERS.csrf, token)
            if nonce:
                part = part.replace(MARKERS.nonce, nonce)
            fills.append(part.encode())
            reusable.append(secret_free)
            continue
        reusable.append(False)
    # The CSRF secret (not the masked token, which changes every time) and the visitor parts.
    csrf_secret = request.META.get("CSRF_COOKIE") or ""
    digest = hashlib.sha256(f"{csrf_secret}\x00{parts_text}".encode()).hexdigest()
    return Personalised(layout=layout, fills=fills, visitor_digest=digest, nonce_length=len(nonce),
                        reusable=tuple(reusable))


def _etag(stored_digest: str, visitor_digest: str) -> str:
    return 'W/"%s"' % hashlib.sha256(f"{stored_digest}:{visitor_digest}".encode()).hexdigest()[:32]


def _finish(request, response: HttpResponse, etag: str | None) -> HttpResponse:
    # The body holds this visitor's token and cart: browsers may keep it, shared caches must not,
    # and the browser asks again every time (a 304 when nothing changed).
    response["Cache-Control"] = "private, no-cache"
    patch_vary_headers(response, ("Cookie", "Accept-Encoding"))
    if etag:
        response["ETag"] = etag
    return response


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
            response.content = _personalise(request, html).body()
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
        except Exception:  # noqa: BLE001
            logger.exception("Could not store a catalog page")
        local = _local_put(key, stored)
        request.catalog_page_cache = "miss"
    else:
        request.catalog_page_cache = "hit"
    page = _personalise(request, local.stored.html, local)
    etag = _etag(local.stored.digest, page.visitor_digest)
    if_none_match = request.META.get("HTTP_IF_NONE_MATCH")
    if if_none_match and _weak_match(etag, if_none_match):
        not_modified = HttpResponseNotModified()
        not_modified._csp_exempt = True  # keep the CSP header (nonce) of the copy the browser has
        return _finish(request, not_modified, etag)
    compressed = None
    if _ACCEPTS_GZIP.search(request.META.get("HTTP_ACCEPT_ENCODING", "")):
        compressed = page.gzip_body()
    if compressed is not None:
        # gzip_page leaves an answer that has a Content-Encoding alone.
        response = HttpResponse(compressed, content_type=local.stored.content_type)
        response["Content-Encoding"] = "gzip"
        response["Content-Length"] = str(len(compressed))
    else:
        response = HttpResponse(page.body(), content_type=local.stored.content_type)
    response["X-Catalog-Cache"] = request.catalog_page_cache
    return _finish(request, response, etag)


def _weak_match(etag: str, header: str) -> bool:
    if header.strip() == "*":
        return True
    strip = lambda tag: tag[2:] if tag.startswith("W/") else tag  # noqa: E731
    return any(strip(tag) == strip(etag) for tag in parse_etags(header))


# --- Private pages: the layout rendered once per process --------------------------------------

#: compiled template -> {(language, script prefix, content name): Layout}
_shells: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_shells_lock = threading.Lock()


def _forget_shells(**kwargs) -> None:
    """Settings changed (tests override them): shells show settings (the footer's licence, static URLs)."""
    with _shells_lock:
        _shells.clear()


setting_changed.connect(_forget_shells)


def render_in_shell(request, template_name: str, *, content_name: str, content: str, context: dict | None = None,
                    status: int = 200) -> HttpResponse:
    """What ``render(request, template_name, {**context, content_name: content})`` answers, for a
    private page whose layout is rendered once per process.

    Why: on the cart page, ``base.html`` (head, header, footer: ~1,800 Python calls through the
    template engine) cost about as much as the cart itself, and only its ``{% visitor %}`` parts,
    the CSRF token and the CSP nonce differ between requests. So the template is rendered once,
    as the shared catalog copies are (anonymous, no messages, no query string; markers for the
    token, the nonce and the visitor parts) with a marker in place of ``content_name``, and each
    request fills the markers in: ``content`` (already HTML), this visitor's parts (rendered with
    ``context`` over the context processors', e.g. the cart count the view already has, and its
    ``csrf_token``), the token and the nonce. The template must show nothing else that depends on
    the request: here only ``content_name`` and the visitor parts do. Nothing is shared between
    processes or stored: shells are kept per compiled template (a template edited in development
    is a new one), language and script prefix, and forgotten when settings change.
    """
    layout = _shell(request, template_name, content_name)
    page = _personalise(request, "", layout=layout, content=content, extra=context)
    return HttpResponse(page.body(), status=status)


def _shell(request, template_name: str, content_name: str) -> Layout:
    compiled = engines["django"].get_template(template_name).template
    key = (translation.get_language(), get_script_prefix(), content_name)
    layouts = _shells.get(compiled)
    layout = layouts.get(key) if layouts is not None else None
    if layout is None:
        layout = Layout(_render_shell(request, template_name, content_name))
        with _shells_lock:
            _shells.setdefault(compiled, {})[key] = layout
    return layout


def _render_shell(request, template_name: str, content_name: str) -> str:
    """The template rendered with markers for everything per request (see ``render_in_shell``)."""
    saved_get, saved_nonce = request.GET, request.__dict__.get("csp_nonce")
    setattr(request, _RENDER_FLAG, True)
    request.GET = QueryDict()  # the header's search box shows the query string's ``q``
    if saved_nonce is not None:
        request.csp_nonce = MARKERS.nonce
    try:
        return render_to_string(template_name, {content_name: mark_safe(MARKERS.content)}, request=request)
    finally:
        delattr(request, _RENDER_FLAG)
        request.GET = saved_get
        if saved_nonce is not None:
            request.csp_nonce = saved_nonce
