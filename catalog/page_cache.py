"""Whole-page cache of the public catalog pages, with exact invalidation and per-visitor holes.

Why: a catalog page is the same HTML for every visitor until staff change something, and
rendering it (queries built by the ORM, some forty model objects, templates) costs many times
what serving a stored copy does (figures: docs/performance.md). Three parts make that safe:

**Generations of what a page shows.** Every stored page carries the generations it was rendered
under, and is served only while they are all unchanged: every page reads ``GENERATION_KEY``, a
product page also its product's (``product_generation_key``: a bucket of its slug), the listing,
search, category and home pages the listing generation and their memos'. They are read in one
round trip before anything else (``_read_generations``), so an edit committed mid-render leaves that
copy stale at once. A write replaces only the generations of what it changed (``Change``): model
``save``/``delete`` and the querysets' ``update``/``delete``/``bulk_*`` of every catalog model call
``catalog_changed`` (``CatalogModel``, ``CatalogQuerySet``), so the admin, its inlines and bulk
actions, the CSV import, the price services and checkout's stock moves are all covered without each
remembering to; a stock move retires a page only when a pack goes out of (or back into) stock, and
a price only the listings when a lowest per-pill price moved (``catalog.models``). Replacement
happens once, after the transaction commits. Where the generations live: in the page cache (Redis in
production, so every web server sees a change at once), or, when that cache is each process's own
memory, in the database (``DatabaseGenerations``), so a change saved by any process reaches every
other one. A generation is a random token, not a counter, so a Redis restart or eviction can never
bring an old page back to life. Each copy also expires after ``CATALOG_PAGE_CACHE_SECONDS`` (a
safety net only), and page keys carry a fingerprint of the templates (``code_version``), so a deploy
starts afresh.

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
from dataclasses import dataclass, field
from functools import wraps
from pathlib import Path
from urllib.parse import urlencode

from csp.decorators import csp_exempt
from django.apps import apps
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import AnonymousUser
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.db import DEFAULT_DB_ALIAS, connections, models, router, transaction
from django.http import HttpResponse, HttpResponseNotModified, QueryDict
from django.middleware.csrf import get_token
from django.template.loader import render_to_string
from django.utils.cache import patch_vary_headers
from django.utils.http import parse_etags

logger = logging.getLogger(__name__)

#: Every page depends on this one: replaced by a write that cannot be pinned to products (a
#: category edit, a product deleted, ``generate_catalog``'s ``COPY``).
GENERATION_KEY = "catalog:generation"
#: What the listing, search, category and home pages show: replaced when a product's card may
#: have changed (name, summary, published or featured flag, category, its "from … per pill").
LISTING_GENERATION_KEY = "catalog:generation:listing"
#: Replaced only when the set of products, their names, categories or flags may have changed.
PRODUCTS_GENERATION_KEY = "catalog:generation:products"
#: Replaced when a product's stored lowest per-pill price may have changed (or the products did).
PRICES_GENERATION_KEY = "catalog:generation:prices"
#: A product page's own generation, one per bucket of slugs (a hash of the slug): the number of
#: keys stays bounded whatever slugs a scanner asks for, and a write retires the pages of its
#: product's bucket only (at 65,536 buckets, another product's page only by a rare collision).
PRODUCT_GENERATION_PREFIX = "catalog:generation:product:"
PRODUCT_BUCKET_HEX_DIGITS = 4
PAGE_KEY_PREFIX = "catalog:page:"
#: In a per-process page cache: what a generation not stored in the database yet reads as.
LOCAL_EPOCH_KEY = "catalog:generation:local-epoch"
_RENDER_FLAG = "_catalog_page_cache_render"
_local = threading.local()


def _secret_marker(name: str) -> str:
    """A placeholder nobody can type into a page (e.g. through the search box): derived from SECRET_KEY.

    Letters and digits only, so HTML escaping leaves it intact; the same on every server.
    """
    return _marker(settings.SECRET_KEY, name)


@functools.lru_cache(maxsize=16)
def _marker(secret_key: str, name: str) -> str:
    """Computed once per key (every hit fills several holes)."""
    digest = hmac.new(secret_key.encode(), f"catalog-page-cache:{name}".encode(), hashlib.sha256)
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


# --- Generations: where they are kept ---------------------------------------------------------


class CacheGenerations:
    """The generations in the page cache itself (Redis in production): every server reads them.

    A missing one is created with a random token (``add``) before a page is rendered under it, and
    a replaced one gets a new random token, never a counter: a Redis restart or an eviction can
    never bring an old page back to life.
    """

    #: No token stands for a generation not stored yet: created before use.
    missing = None

    def __init__(self, cache):
        self.cache = cache

    def get_many(self, keys: list[str]) -> dict[str, str]:
        return self.cache.get_many(keys)

    def set_many(self, tokens: dict[str, str]) -> None:
        self.cache.set_many(tokens, timeout=None)

    def add_many(self, tokens: dict[str, str]) -> None:
        for key, token in tokens.items():
            self.cache.add(key, token, timeout=None)


class DatabaseGenerations:
    """The generations in a table (``catalog.PageGeneration``), read in one indexed query.

    For a page cache each process keeps to itself (``LocMemCache``: the configuration without
    ``REDIS_URL``): a generation kept there too would never hear of a price saved by another
    worker, a Celery task or a management command. The pages may stay per process; only what
    says whether they are still right must be shared, and the database is what every process sees.

    A generation with no row yet reads as this process's own token, kept in its page cache
    (nothing is written on a read, so a scanner asking for made-up addresses adds no rows); the
    first write that retires it stores a random token, which every process then reads instead.
    If the process's token goes (the cache cleared or culled), its pages just render afresh.
    """

    def __init__(self, cache):
        self.cache = cache

    @property
    def missing(self) -> str:
        return self.cache.get_or_set(LOCAL_EPOCH_KEY, secrets.token_hex(8), timeout=None)

    @staticmethod
    def _rows():
        return apps.get_model("catalog", "PageGeneration")._base_manager

    def get_many(self, keys: list[str]) -> dict[str, str]:
        return dict(self._rows().filter(key__in=keys).values_list("key", "token"))

    def set_many(self, tokens: dict[str, str]) -> None:
        model = self._rows().model
        self._rows().bulk_create(
            [model(key=key, token=token) for key, token in sorted(tokens.items())],
            update_conflicts=True,
            unique_fields=["key"],
            update_fields=["token"],
        )

    def add_many(self, tokens: dict[str, str]) -> None:
        model = self._rows().model
        self._rows().bulk_create(
            [model(key=key, token=token) for key, token in sorted(tokens.items())],
            ignore_conflicts=True,
        )


def _generations() -> CacheGenerations | DatabaseGenerations:
    """Where the generations live: ``CATALOG_PAGE_GENERATIONS`` ("cache" or "database"), by default
    the page cache unless that cache is this process's own memory."""
    cache = _cache()
    where = getattr(settings, "CATALOG_PAGE_GENERATIONS", "") or (
        "database" if isinstance(cache, LocMemCache) else "cache"
    )
    return DatabaseGenerations(cache) if where == "database" else CacheGenerations(cache)


def product_generation_key(slug: str) -> str:
    """The generation of the product page at ``slug`` (shared by the slugs of its hash bucket)."""
    digest = hashlib.sha256(slug.encode("utf-8", "surrogateescape")).hexdigest()
    return PRODUCT_GENERATION_PREFIX + digest[:PRODUCT_BUCKET_HEX_DIGITS]


def product_page_generations(kwargs: dict) -> list[str]:
    """What a product page (``slug`` in the URL) shows beyond what every page does."""
    return [product_generation_key(kwargs["slug"])]


def listing_page_generations(kwargs: dict) -> list[str]:
    """What the listing, search, category and home pages show beyond what every page does; with
    the memos' generations, which their query and counts are read from (``memoize``)."""
    return [LISTING_GENERATION_KEY, *MEMO_GENERATION_KEYS]


#: The memos' generations, read with a listing's own in one round trip: a listing served from this
#: process's copy asks nothing else (``memoize``).
MEMO_GENERATION_KEYS = (PRODUCTS_GENERATION_KEY, PRICES_GENERATION_KEY)
GLOBAL_GENERATION_KEYS = (GENERATION_KEY, LISTING_GENERATION_KEY, *MEMO_GENERATION_KEYS)


# --- Invalidation: what a write retires -------------------------------------------------------


@dataclass
class Change:
    """What a write may have changed, as far as the pages can tell.

    ``everything``: any page (a category, a deleted product, raw SQL). ``products``: the set of
    products, their cards, names, categories or flags (the listings and both memos). ``prices``: a
    stored lowest per-pill price (the listings, the price order's memo). ``listing``: a card.
    ``product_ids``, ``dosage_ids``, ``slugs``: the product pages that show the rows written.
    """

    everything: bool = False
    products: bool = False
    prices: bool = False
    listing: bool = False
    product_ids: set = field(default_factory=set)
    dosage_ids: set = field(default_factory=set)
    slugs: set = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(
            self.everything
            or self.products
            or self.prices
            or self.listing
            or self.product_ids
            or self.dosage_ids
            or self.slugs
        )

    def merge(self, other: Change) -> None:
        self.everything |= other.everything
        self.products |= other.products
        self.prices |= other.prices
        self.listing |= other.listing
        self.product_ids |= other.product_ids
        self.dosage_ids |= other.dosage_ids
        self.slugs |= other.slugs


#: Generations this process could not replace while the cache was unreachable. The first read
#: that reaches the cache again replaces them, so a change saved during an outage does not leave
#: the pages stored before it on show once Redis is back (``_read_generations``).
_unreplaced: set[str] = set()


def _replace(keys) -> None:
    keys = {*keys, *_unreplaced}
    if not keys:
        return
    try:
        _generations().set_many({key: secrets.token_hex(8) for key in keys})
    except Exception:  # a cache outage must not fail the write
        _unreplaced.update(keys)
        logger.exception(
            "Could not replace the catalog generation; replaced when the cache answers again"
        )
    else:
        _unreplaced.clear()


def _product_slugs(change: Change, using: str) -> set[str] | None:
    """The slugs of the products a change names by id or by dosage (one query); None if unreadable."""
    if not (change.product_ids or change.dosage_ids):
        return set()
    product = apps.get_model("catalog", "Product")
    condition = models.Q(pk__in=change.product_ids) | models.Q(dosages__pk__in=change.dosage_ids)
    try:
        return set(
            product._base_manager.using(using)
            .filter(condition)
            .values_list("slug", flat=True)
            .distinct()
        )
    except Exception:
        logger.exception("Could not read the slugs of changed products; retiring every page")
        return None


def generation_keys(change: Change, *, using: str = DEFAULT_DB_ALIAS) -> set[str]:
    """The generations a change replaces."""
    keys: set[str] = set()
    if change.everything:
        return set(GLOBAL_GENERATION_KEYS)
    if change.products:
        keys |= {LISTING_GENERATION_KEY, PRODUCTS_GENERATION_KEY, PRICES_GENERATION_KEY}
    if change.prices:
        keys |= {LISTING_GENERATION_KEY, PRICES_GENERATION_KEY}
    if change.listing:
        keys.add(LISTING_GENERATION_KEY)
    slugs = _product_slugs(change, using)
    if slugs is None:
        return set(GLOBAL_GENERATION_KEYS)
    return keys | {product_generation_key(slug) for slug in slugs | change.slugs}


def _retire(change: Change, using: str) -> None:
    if change:
        _replace(generation_keys(change, using=using))


def _pending() -> dict[str, Change]:
    return _local.__dict__.setdefault("pending", {})


def catalog_changed(
    *,
    using: str = DEFAULT_DB_ALIAS,
    everything: bool = False,
    products: bool = False,
    prices: bool = False,
    listing: bool = False,
    product_ids=(),
    dosage_ids=(),
    slugs=(),
) -> None:
    """Retire the pages that show what a write changed (see ``Change``); called by every write
    to a catalog table (``CatalogModel``, ``CatalogQuerySet``), and by raw SQL writers themselves.

    The generations are replaced once, after the transaction commits (at once outside one): that
    is the replacement that matters, since until then other servers still see the old rows. The
    writes of one transaction (a bulk price change, a CSV import, an order's stock moves) are
    gathered and retired together by the first callback to run after the commit; Django drops the
    callbacks of a rolled-back savepoint, and what such a write gathered is retired with the next
    commit (once more than needed, never less).

    Inside a transaction they are also replaced at once if this transaction's own connection has
    rendered a page or a memo (``_note_render``): such a copy can show its uncommitted rows (a view
    that writes then renders, or a test, whose transaction never commits).
    """
    change = Change(
        everything=everything,
        products=products,
        prices=prices,
        listing=listing,
        product_ids={pk for pk in product_ids if pk is not None},
        dosage_ids={pk for pk in dosage_ids if pk is not None},
        slugs=set(slugs),
    )
    if not change:
        return
    if _rendered_in_this_transaction(using):
        _retire(change, using)
    pending = _pending()
    if using in pending:
        pending[using].merge(change)
    else:
        pending[using] = change
    # Outside a transaction Django runs the callback at once.
    transaction.on_commit(functools.partial(_flush, using), using=using, robust=True)


def _flush(using: str) -> None:
    change = _pending().pop(using, None)
    if change is not None:
        _retire(change, using)


def _note_render(using: str = DEFAULT_DB_ALIAS) -> None:
    """A page or memo is being computed: if inside a transaction, its later writes retire at once."""
    connection = connections[using]
    if not connection.in_atomic_block or not connection.atomic_blocks:
        return
    outermost = connection.atomic_blocks[0]
    if getattr(_local, "rendered_in", None) is not outermost:
        _local.rendered_in = outermost  # the object itself: its id could be reused once freed
        transaction.on_commit(_forget_render, using=using)


def _forget_render() -> None:
    _local.rendered_in = None


def _rendered_in_this_transaction(using: str) -> bool:
    connection = connections[using]
    return bool(
        connection.in_atomic_block
        and connection.atomic_blocks
        and getattr(_local, "rendered_in", None) is connection.atomic_blocks[0]
    )


#: A write naming more products than this retires every page instead of reading their slugs.
MAX_PINNED_PRODUCTS = 1000
_OWNER_ATTNAMES = {"pk": "pk", "product": "product_id", "dosage": "dosage_id"}


def _owner_change(model, ids, *, deleting: bool = False) -> dict:
    """``catalog_changed`` arguments for a write of ``model`` rows whose owners are ``ids``."""
    owner = model.page_owner
    if owner is None or (deleting and owner == "pk"):  # deleting products cascades anywhere
        return {"everything": True}
    ids = {pk for pk in ids if pk is not None}
    if len(ids) > MAX_PINNED_PRODUCTS:
        return {"everything": True}
    if owner == "pk":
        return {"products": True, "product_ids": ids}
    if owner == "product":
        return {"product_ids": ids}
    return {"dosage_ids": ids}


def _rows_change(queryset, *, deleting: bool = False) -> dict:
    """What a write of a queryset's rows retires: their owners, read before the write (one query)."""
    owner = queryset.model.page_owner
    if owner is None or (deleting and owner == "pk"):
        return {"everything": True}
    ids = (
        queryset.order_by()
        .values_list(_OWNER_ATTNAMES[owner], flat=True)
        .distinct()[: MAX_PINNED_PRODUCTS + 1]
    )
    return _owner_change(queryset.model, list(ids), deleting=deleting)


def _objects_change(model, objs) -> dict:
    owner = model.page_owner
    if owner is None:
        return {"everything": True}
    change = _owner_change(model, [getattr(obj, _OWNER_ATTNAMES[owner]) for obj in objs])
    if owner == "pk":
        change.setdefault("slugs", {obj.slug for obj in objs})
    return change


class CatalogQuerySet(models.QuerySet):
    """Bulk writes of a catalog table retire the pages that show their rows (see ``Change``).

    The ``*_unretired`` forms are for a caller that retires what its write shows itself (the
    lowest-price writes, which know their products; the stock moves, which retire only a pack
    going out of or back into stock).
    """

    def update(self, **kwargs):
        catalog_changed(using=self.db, **_rows_change(self))
        return super().update(**kwargs)

    def delete(self):
        catalog_changed(using=self.db, **_rows_change(self, deleting=True))
        return super().delete()

    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        catalog_changed(using=self.db, **_objects_change(self.model, objs))
        return super().bulk_create(objs, *args, **kwargs)

    def bulk_update(self, objs, fields, *args, **kwargs):
        objs = list(objs)
        catalog_changed(using=self.db, **_objects_change(self.model, objs))
        return super().bulk_update(objs, fields, *args, **kwargs)

    def update_unretired(self, **kwargs):
        return models.QuerySet.update(self, **kwargs)

    def delete_unretired(self):
        return models.QuerySet.delete(self)

    def bulk_create_unretired(self, objs, *args, **kwargs):
        return models.QuerySet.bulk_create(self, objs, *args, **kwargs)

    def bulk_update_unretired(self, objs, fields, *args, **kwargs):
        return models.QuerySet.bulk_update(self, objs, fields, *args, **kwargs)


class CatalogModel(models.Model):
    """Base of every model a catalog page shows: saving or deleting one retires the pages that
    show it: its product's page (and the listings, for a product or a category)."""

    #: The field that ties a row to the product whose page shows it: "pk" (a product itself),
    #: "product" (a part of its page), "dosage" (a pack); None: every page may show it.
    page_owner: str | None = None

    objects = CatalogQuerySet.as_manager()

    class Meta:
        abstract = True

    def page_change(self, *, deleting: bool = False, update_fields=None) -> dict:
        """``catalog_changed`` arguments for saving (or deleting) this row."""
        return _owner_change(
            type(self),
            [getattr(self, _OWNER_ATTNAMES.get(self.page_owner, "pk"))],
            deleting=deleting,
        )

    def save(self, *args, **kwargs):
        catalog_changed(
            using=kwargs.get("using") or router.db_for_write(type(self), instance=self),
            **self.page_change(update_fields=kwargs.get("update_fields")),
        )
        return super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        catalog_changed(
            using=kwargs.get("using") or router.db_for_write(type(self), instance=self),
            **self.page_change(deleting=True),
        )
        return super().delete(*args, **kwargs)


def stored_generation(key: str) -> str | None:
    """The generation now stored under ``key`` (None if none yet); for checks and tests."""
    return _generations().get_many([key]).get(key)


def _read_generations(keys) -> dict[str, str] | None:
    """The current generations of ``keys`` (created if missing), in one round trip when all exist;
    None while the cache (or the table) cannot be read."""
    if _unreplaced:
        _replace(())  # the cache is back after a change this process could not announce
        if _unreplaced:
            return None
    keys = list(dict.fromkeys(keys))
    store = _generations()
    try:
        found = dict(store.get_many(keys))
        if store.missing is not None:
            missing = store.missing
            return {key: found.get(key) or missing for key in keys}
        missing = [key for key in keys if found.get(key) is None]
        if missing:
            store.add_many({key: secrets.token_hex(8) for key in missing})
            found.update(store.get_many(missing))
    except Exception:
        logger.exception("Catalog page cache unreachable")
        return None
    if any(found.get(key) is None for key in keys):
        return None
    return found


def _generation(key: str) -> str | None:
    """A generation, from those read with this request's page if it was (no second round trip)."""
    read = getattr(_local, "generations", None)
    if read is not None and key in read:
        return read[key]
    found = _read_generations([key])
    return found[key] if found else None


LOCAL_MEMOS_MAX = 256
_local_memos: OrderedDict[str, object] = OrderedDict()
_MISSING = object()


def _memo_local(key: str, value=_MISSING):
    """This process's copy of a memo (keyed by its generation, so never out of date), when the
    memos are in a shared cache (a round trip saved); a per-process cache is this already."""
    if isinstance(_cache(), LocMemCache):
        return value
    with _local_pages_lock:
        if value is _MISSING:
            found = _local_memos.get(key, _MISSING)
            if found is not _MISSING:
                _local_memos.move_to_end(key)
            return found
        _local_memos[key] = value
        while len(_local_memos) > LOCAL_MEMOS_MAX:
            _local_memos.popitem(last=False)
        return value


def memoize(name: str, compute, *, products_only: bool = False, prices_only: bool = False):
    """``compute()`` once per generation, shared by all servers (category and result counts).

    Why: counting the published products of each category, or the matches of a search, reads a
    share of the catalog, so its cost grows with the catalog. With ``products_only`` the value is
    kept until the products themselves change (not a price or a stock move); with ``prices_only``
    until they or a stored lowest per-pill price may have changed (not a stock move, nor any
    write that cannot change a lowest price); otherwise until any listing may have changed.
    Each process also keeps the values it used (the listing's query is normalised with the
    categories before its page is looked up: a hit asks the cache nothing more). Computed
    afresh if the cache is down.
    """
    generation_key = (
        PRODUCTS_GENERATION_KEY
        if products_only
        else PRICES_GENERATION_KEY
        if prices_only
        else LISTING_GENERATION_KEY
    )
    generation = _generation(generation_key)
    if generation is None:
        return compute()
    key = (
        f"catalog:memo:{generation}:"
        + hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()
    )
    found = _memo_local(key)
    if found is not _MISSING:
        return found
    try:
        found = _cache().get(key)
    except Exception:  # noqa: BLE001
        found = None
    if found is not None:
        return _memo_local(key, found)
    _note_render()  # read inside this transaction: its later writes must retire it
    value = compute()
    try:
        _cache().set(key, value, timeout=_timeout())
    except Exception:
        logger.exception("Could not store %s", name)
    return _memo_local(key, value)


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


def _read(key: str, version: str | None) -> LocalPage | None:
    """The page stored under ``key`` if it is of ``version``: this process's copy (no round trip
    once the generations are read), else the shared one (fetched once per process and version)."""
    if version is None:
        return None
    local = _local_get(key, version)
    if local is not None:
        return local
    try:
        stored = _cache().get(key)
    except Exception:  # serve uncached while the cache is down
        logger.exception("Catalog page cache unreachable")
        return None
    if stored is None or stored.generation != version:
        return None
    return _local_put(key, stored)


def _render_for_cache(view, request, args, kwargs):
    """Run the view with placeholders in place of everything per-visitor."""
    _note_render()
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


def cached_catalog_page(view=None, *, params=None, shows=listing_page_generations):
    """Serve ``view``'s GET/HEAD answers from the shared page cache (see the module docstring).

    ``params(request.GET)`` names the query parameters the page reads, each normalised to one
    spelling (a value the page treats like the default left out): the key holds only those, so a
    scanner's junk parameters or spellings cannot fill the cache with copies of one page. The view
    then runs with that query as ``request.GET``, so the stored copy is exactly what its key says
    (no junk echoed into a link or the search box shown to the next visitor). Without ``params``
    the page reads no query string at all.

    ``shows(kwargs)`` names the generations of what the page shows besides what every page does
    (``GENERATION_KEY``): ``listing_page_generations`` or ``product_page_generations``. They are
    read with the memos' in one round trip before anything else, and a stored copy is served only
    while all of them are what they were when it was rendered.
    """
    if view is None:
        return functools.partial(cached_catalog_page, params=params, shows=shows)

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method not in ("GET", "HEAD") or not enabled():
            return view(request, *args, **kwargs)
        depends = [GENERATION_KEY, *shows(kwargs)]
        _local.generations = read = _read_generations(depends)
        version = "|".join(read[key] for key in depends) if read else None
        original_get, request.GET = request.GET, page_query(request, params)
        try:
            return _serve(view, request, args, kwargs, version)
        finally:
            request.GET = original_get
            _local.generations = None

    return wrapper


def _serve(view, request, args, kwargs, version: str | None) -> HttpResponse:
    """One GET/HEAD of a cached page, ``request.GET`` already the page's own query; ``version``:
    the generations it depends on, read before anything else (None: the cache is unreachable)."""
    key = page_key(request, request.GET.urlencode())
    local = _read(key, version)
    if local is None:
        response = _render_for_cache(view, request, args, kwargs)
        if getattr(response, "streaming", False) or not isinstance(response, HttpResponse):
            return response
        html = response.content.decode(response.charset or "utf-8")
        if response.status_code != 200 or version is None:
            # Not stored (a redirect, an error page): still filled for this visitor.
            response.content = _personalise(request, html)[0]
            return response
        html = compact(html)
        stored = StoredPage(
            generation=version,
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
