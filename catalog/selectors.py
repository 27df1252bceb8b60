"""Read-side queries of the storefront: what the catalog pages show, in a fixed number of queries.

Every function here returns data ready for a template, with the price figures already computed
by ``catalog.pricing``. The query count of each page must not grow with the number of products,
dosages or tiers: a list is cut to its page first and its rows priced in the same query, a product
page is one query per relation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db import connections
from django.db.models import (
    BooleanField,
    Count,
    DecimalField,
    F,
    Func,
    Prefetch,
    Q,
    QuerySet,
    Window,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import RowNumber
from djmoney.money import Money

from . import page_cache, pricing
from .models import (
    Category,
    Dosage,
    LegalClass,
    PackageTier,
    Product,
    SafetyNote,
    lowest_per_pill_sql,
)

# Legal-class filter of the listing: ``?rx=prescription`` or ``?rx=otc`` (no prescription needed).
RX_FILTERS: dict[str, tuple[str, list[str]]] = {
    "otc": ("No prescription needed", [LegalClass.GENERAL_SALE, LegalClass.PHARMACY]),
    "prescription": ("Prescription only", [LegalClass.PRESCRIPTION]),
}
SEARCH_MAX_LENGTH = 100
SEARCH_MAX_TERMS = 6
FEATURED_LIMIT = 8

# Per-pill prices are divided in the database. 12 decimal places keep the later half-up rounding
# to the cent exact (a pack price in cents over a pill count is never within 1e-12 of a half cent
# without being exactly on it), also on SQLite where the division is done in floating point.
PER_PILL_FIELD = DecimalField(max_digits=24, decimal_places=12)


class PerPill(Func):
    """``price / quantity`` of a tier, computed by the database."""

    template = "(%(expressions)s)"
    arg_joiner = " / "
    output_field = PER_PILL_FIELD

    def as_sqlite(self, compiler, connection, **extra_context):
        # SQLite stores a whole-dollar price as an integer and would divide integers
        # (45 / 100 = 0); dividing a REAL keeps the cents.
        return super().as_sqlite(
            compiler,
            connection,
            template="(CAST(%(expressions)s)",
            arg_joiner=" AS REAL) / ",
            **extra_context,
        )


# --- Listings ---------------------------------------------------------------------------------


def per_pill_money(amount: Decimal | None) -> Money | None:
    """The lowest per-pill amount as shown on a card: rounded half-up to the cent."""
    if amount is None:
        return None
    return pricing.round_money(Money(Decimal(amount), settings.DEFAULT_CURRENCY))


def attach_from_prices(products: Iterable[Product]) -> list[Product]:
    """Set ``from_per_pill`` (Money or None) on each product read by ``priced_cards``: no query.

    The minimum itself (``lowest_per_pill``) came with the rows, from ``lowest_per_pill_sql``.
    """
    products = list(products)
    for product in products:
        product.from_per_pill = per_pill_money(product.lowest_per_pill)
    return products


#: The columns a product card shows (and the listing orders by): rows are read without the rest
#: (timestamps, long texts, the category), which Django would otherwise fetch and convert per card.
CARD_FIELDS = (
    "id",
    "name",
    "slug",
    "active_ingredient",
    "kind",
    "dosage_form",
    "legal_class",
    "summary",
)


def card_queryset() -> QuerySet[Product]:
    """Published products, to be filtered, ordered and cut, then read as cards by ``priced_cards``.

    Counting and paginating never join the tiers: the "from $X per pill" figure is read by
    ``priced_cards`` for the page's rows only.
    """
    return Product.objects.published().only(*CARD_FIELDS)


def priced_cards(products: QuerySet[Product], *, by_price: bool = False) -> list[Product]:
    """The cards of the products a filtered and cut queryset selects, by (name, id), priced: one query.

    Each product comes with ``CARD_FIELDS``, ``lowest_per_pill`` (the cheapest active pill, by
    ``lowest_per_pill_sql``, evaluated for these rows only) and ``from_per_pill``. The filters,
    order and cut stay the ORM's (``products``); only the fixed statement around them is written out:
    built with the ORM (``filter(pk__in=ids).only(...).annotate(...)``), Django spent more CPU
    compiling it on every page than PostgreSQL takes to run it, and ``raw()`` more again mapping
    its columns (bench/miss.py); rows become products by ``Model.from_db``. The
    minimum goes through the converters the ORM would apply to a ``PER_PILL_FIELD`` annotation (on
    SQLite, the float of the division rounded to 12 places, as the ORM path did). ``by_price``: in
    the price order instead (the stored lowest, NULLS LAST, then name and id: ``price_sorted_page``).
    """
    ids = products.values("pk")
    connection = connections[ids.db]
    ids_sql, params = ids.query.get_compiler(using=ids.db).as_sql()
    table = connection.ops.quote_name(Product._meta.db_table)

    def column(name: str) -> str:
        return f"{table}.{connection.ops.quote_name(Product._meta.get_field(name).column)}"

    sql = (
        f"SELECT {', '.join(column(name) for name in CARD_FIELDS)}, "
        f"({lowest_per_pill_sql(vendor=connection.vendor)}) AS lowest_per_pill "
        f"FROM {table} WHERE {column('id')} IN ({ids_sql}) ORDER BY "
        + (
            f"{column('lowest_pill_price')} IS NULL, {column('lowest_pill_price')}, "
            if by_price
            else ""
        )
        + f"{column('name')}, {column('id')}"
    )
    lowest = RawSQL("", (), output_field=PER_PILL_FIELD)
    converters = connection.ops.get_db_converters(lowest) + lowest.get_db_converters(connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    # The card columns (integers and text) need no converter on PostgreSQL or SQLite.
    attnames = [Product._meta.get_field(name).attname for name in CARD_FIELDS]
    products = []
    for *values, lowest_per_pill in rows:
        product = Product.from_db(ids.db, attnames, values)
        for convert in converters:
            lowest_per_pill = convert(lowest_per_pill, lowest, connection)
        product.lowest_per_pill = lowest_per_pill
        products.append(product)
    return attach_from_prices(products)


def categories_with_counts() -> list[Category]:
    """Categories with their published product counts: counted once per change of the products.

    ``products_only``: the list depends on the categories and on the products' category and
    published flag only, and both models replace the products generation when they change; a price
    or stock change (every checkout moves stock) keeps it. Counting reads every published
    product, which the first listing or home page after each such change used to pay.
    """
    return page_cache.memoize(
        "categories_with_counts",
        lambda: list(
            Category.objects.annotate(
                published_count=Count("products", filter=Q(products__is_published=True))
            ).order_by("position", "name")
        ),
        products_only=True,
    )


def featured_products(*, limit: int = FEATURED_LIMIT) -> list[Product]:
    return priced_cards(card_queryset().filter(is_featured=True).order_by("name")[:limit])


def search_terms(query: str) -> list[str]:
    """Split a search box entry into at most a few words; every word must match."""
    return query[:SEARCH_MAX_LENGTH].split()[:SEARCH_MAX_TERMS]


def product_listing(
    *, q: str = "", category: Category | None = None, rx: str = ""
) -> QuerySet[Product]:
    """Published products, filtered and ordered; paginate it with ``listing_page`` (which prices the page).

    Search is a plain case-insensitive substring match on name, brand names, active ingredient
    and indications (LIKE/UPPER on SQLite and PostgreSQL alike); each word must match somewhere.
    On PostgreSQL trigram indexes on those columns (migration 0002) answer the LIKEs.
    """
    queryset = card_queryset()
    if category is not None:
        queryset = queryset.filter(category=category)
    if rx in RX_FILTERS:
        queryset = queryset.filter(legal_class__in=RX_FILTERS[rx][1])
    for term in search_terms(q):
        queryset = queryset.filter(
            Q(name__icontains=term)
            | Q(brand_names__icontains=term)
            | Q(active_ingredient__icontains=term)
            | Q(indications__icontains=term)
        )
    return queryset.order_by("name", "pk")


# Every this many pages the listing index keeps the (name, id) a page starts with.
MARK_EVERY_PAGES = 5


def listing_index(
    queryset: QuerySet[Product], *, per_page: int
) -> tuple[int, list[tuple[str, int]]]:
    """(number of matches, the (name, id) starting every ``MARK_EVERY_PAGES``-th page).

    One read of the matches' (name, id) from the listing index, kept until the products change
    (``page_cache.memoize``): the total for the paginator, and marks that let a late page start
    near its place instead of counting its way there (an OFFSET reads every earlier row; from the
    nearest mark it is at most ``MARK_EVERY_PAGES`` pages).
    """
    step = MARK_EVERY_PAGES * per_page
    count, marks = 0, []
    for count, (name, pk) in enumerate(queryset.values_list("name", "pk"), start=1):
        if (count - 1) % step == 0:
            marks.append((name, pk))
    return count, marks


def listing_page(
    queryset: QuerySet[Product], *, number, per_page: int, count_key: str = ""
) -> Page:
    """The requested page of a ``product_listing``, its products priced (nonsense numbers give a page).

    The page's rows are fetched by ``pk IN (the page's ids)``: the ids come from the (name, id)
    index alone. With a ``count_key`` (the filters, as a string), the total and the page marks
    come from ``listing_index``, computed once per change of the products, so neither the count
    nor a late page reads the rows before it. One query for the rows and their prices. (By lowest
    price: ``price_sorted_page``.)
    """
    paginator = Paginator(queryset, per_page)
    marks: list[tuple[str, int]] = []
    if count_key:
        paginator.count, marks = page_cache.memoize(
            f"listing_index:{per_page}:{count_key}",
            lambda: listing_index(queryset, per_page=per_page),
            products_only=True,
        )
    page = paginator.get_page(number)
    start = (page.number - 1) * per_page
    ids = queryset.values("pk")
    mark = min(start // (MARK_EVERY_PAGES * per_page), len(marks) - 1)
    if mark > 0:
        name, pk = marks[mark]
        # Rows from the mark on, in (name, id) order: "name >= mark" is what the index can seek to.
        ids = ids.filter(name__gte=name).filter(Q(name__gt=name) | Q(pk__gte=pk))
        if mark + 1 < len(marks):  # and no further than the next mark: a bounded range of the index
            ids = ids.filter(name__lte=marks[mark + 1][0])
        start -= mark * MARK_EVERY_PAGES * per_page
    page.object_list = priced_cards(ids[start : start + per_page])
    return page


def _row_compare(
    queryset: QuerySet[Product], fields: tuple[str, ...], op: str, values
) -> QuerySet[Product]:
    """``(fields) op (values)`` as one SQL row comparison: what a btree index seeks to (an OR of
    column comparisons is a filter PostgreSQL applies row by row)."""
    connection = connections[queryset.db]
    table = connection.ops.quote_name(Product._meta.db_table)
    meta = Product._meta
    columns = ", ".join(
        f"{table}.{connection.ops.quote_name((meta.pk if f == 'pk' else meta.get_field(f)).column)}"
        for f in fields
    )
    placeholders = ", ".join(["%s"] * len(values))
    return queryset.filter(
        RawSQL(f"({columns}) {op} ({placeholders})", tuple(values), output_field=BooleanField())
    )


#: The price order's two parts: products with a lowest price by (price, name, id), then those
#: without one by (name, id) (NULLS LAST). Each part is paginated with its own marks.
PRICED_ORDER = ("lowest_pill_price", "name", "pk")
UNPRICED_ORDER = ("name", "pk")


def _part_marks(
    queryset: QuerySet[Product], order: tuple[str, ...], step: int
) -> tuple[int, list[tuple]]:
    """(rows, the ``order`` values of every ``step``-th row) of one part, numbered by the database:
    the rows are read in index order and only the marks travel to Python."""
    numbered = (
        queryset.order_by()
        .annotate(
            _row=Window(RowNumber(), order_by=[F(f).asc() for f in order]),
            _rows=Window(Count("pk")),
        )
        .annotate(_offset=(F("_row") - 1) % step)
    )
    rows = list(numbered.filter(_offset=0).order_by("_row").values_list(*order, "_rows"))
    return (rows[0][-1] if rows else 0), [row[:-1] for row in rows]


@dataclass(frozen=True)
class PriceIndex:
    """Where each part of the price order starts every ``MARK_EVERY_PAGES`` pages (``price_index``)."""

    priced: int
    unpriced: int
    priced_marks: list[tuple]
    unpriced_marks: list[tuple]

    @property
    def count(self) -> int:
        return self.priced + self.unpriced


def price_index(queryset: QuerySet[Product], *, per_page: int) -> PriceIndex:
    """The totals and page marks of a listing sorted by lowest price per pill: two index-only reads.

    Kept until a product or a stored lowest price may have changed (``memoize(prices_only=True)``:
    a stock move, i.e. every checkout, keeps it; a price edit does not). Recomputing it reads the
    matches' (lowest, name, id) once, numbered by PostgreSQL so only the marks reach Python (a read
    of every match): paid by the first price-sorted page after a
    price change, against an OFFSET through the index on every late page otherwise.
    """
    step = MARK_EVERY_PAGES * per_page
    priced, priced_marks = _part_marks(
        queryset.filter(lowest_pill_price__isnull=False), PRICED_ORDER, step
    )
    unpriced, unpriced_marks = _part_marks(
        queryset.filter(lowest_pill_price__isnull=True), UNPRICED_ORDER, step
    )
    return PriceIndex(
        priced=priced, unpriced=unpriced, priced_marks=priced_marks, unpriced_marks=unpriced_marks
    )


def _part_ids(
    queryset: QuerySet[Product],
    order: tuple[str, ...],
    marks: list[tuple],
    start: int,
    stop: int,
    step: int,
) -> QuerySet[Product]:
    """The ids of rows ``start:stop`` of one part: from the nearest mark before ``start``, no
    further than the mark after ``stop``. A page need not start on a multiple of ``step`` within
    a part (the unpriced part starts where the priced one ends), so it can cross a mark."""
    mark = start // step
    last = max(mark, (stop - 1) // step)  # the mark the page's last row falls under
    ids = queryset.order_by(*order).values("pk")
    if mark > 0:
        ids = _row_compare(ids, order, ">=", marks[mark])
        start, stop = start - mark * step, stop - mark * step
    if last + 1 < len(marks):
        ids = _row_compare(ids, order, "<", marks[last + 1])
    return ids[start:stop]


def price_sorted_page(
    queryset: QuerySet[Product], *, number, per_page: int, count_key: str
) -> Page:
    """A page of a ``product_listing`` by lowest price per pill (products without a price last).

    The order is the stored ``Product.lowest_pill_price`` (``catalog.lowest_prices``), read from
    ``catalog_product_price_idx``: the page's ids are an index range starting at the nearest mark
    of ``price_index``, so a late page costs what the first does. Products with and without a
    price are two parts of the index (a row comparison cannot seek across NULLs), each paginated
    on its own; the one page where the first part ends reads both. Cards from ``priced_cards``,
    one query per part.
    """
    index = page_cache.memoize(
        f"price_index:{per_page}:{count_key}",
        lambda: price_index(queryset, per_page=per_page),
        prices_only=True,
    )
    paginator = Paginator(queryset, per_page)
    paginator.count = index.count
    page = paginator.get_page(number)
    start = (page.number - 1) * per_page
    stop = min(start + per_page, index.count)
    step = MARK_EVERY_PAGES * per_page
    cards: list[Product] = []
    if start < index.priced:
        cards += priced_cards(
            _part_ids(
                queryset.filter(lowest_pill_price__isnull=False),
                PRICED_ORDER,
                index.priced_marks,
                start,
                min(stop, index.priced),
                step,
            ),
            by_price=True,
        )
    if stop > index.priced:
        cards += priced_cards(
            _part_ids(
                queryset.filter(lowest_pill_price__isnull=True),
                UNPRICED_ORDER,
                index.unpriced_marks,
                max(start, index.priced) - index.priced,
                stop - index.priced,
                step,
            )
        )
    page.object_list = cards
    return page


# --- The product page -------------------------------------------------------------------------


@dataclass(frozen=True)
class PriceRow:
    """One row of a price table: the tier (for the cart form) and its figures."""

    tier: PackageTier
    figures: pricing.TierPrice

    @property
    def in_stock(self) -> bool:
        return self.tier.stock is None or self.tier.stock > 0


@dataclass(frozen=True)
class DosageTable:
    dosage: Dosage
    rows: list[PriceRow]


@dataclass
class ProductPage:
    product: Product
    tables: list[DosageTable]
    info_sections: list
    dosing_guidelines: list
    contraindications: list = field(default_factory=list)
    interactions: list = field(default_factory=list)
    side_effects: list = field(default_factory=list)
    faqs: list = field(default_factory=list)

    @property
    def is_available(self) -> bool:
        """Something can be put in the cart: orderable online and at least one active tier."""
        return self.product.can_be_ordered_online and bool(self.tables)

    @property
    def all_rows(self) -> list[PriceRow]:
        return [row for table in self.tables for row in table.rows]

    @property
    def safety_sections(self) -> list[tuple[str, str, list]]:
        """(anchor, heading, notes) of the safety notes, by kind, leaving out empty kinds."""
        sections = [
            ("contraindications", "Who should not take it", self.contraindications),
            ("interactions", "Interactions", self.interactions),
            ("side-effects", "Side effects", self.side_effects),
        ]
        return [section for section in sections if section[2]]

    @property
    def toc(self) -> list[tuple[str, str]]:
        """(anchor, heading) of every patient-information section that has content."""
        entries = [(f"info-{section.pk}", section.heading) for section in self.info_sections]
        if self.dosing_guidelines:
            entries.append(("dosing", "Dosing"))
        entries += [(anchor, heading) for anchor, heading, _notes in self.safety_sections]
        if self.faqs:
            entries.append(("faq", "Questions and answers"))
        return entries


def product_detail_queryset() -> QuerySet[Product]:
    """A published product with everything its page shows: seven queries, whatever its size."""
    active_tiers = PackageTier.objects.filter(is_active=True).order_by("position", "quantity", "pk")
    return (
        Product.objects.published()
        .select_related("category")
        .prefetch_related(
            Prefetch(
                "dosages",
                queryset=Dosage.objects.order_by("strength_micrograms", "pk").prefetch_related(
                    Prefetch("tiers", queryset=active_tiers, to_attr="active_tiers")
                ),
            ),
            "info_sections",
            "dosing_guidelines",
            "safety_notes",
            "faqs",
        )
    )


def price_rows(dosage: Dosage, tiers: list[PackageTier]) -> list[PriceRow]:
    figures = pricing.price_table(
        list_price_per_pill=dosage.list_price_per_pill,
        packs=[(tier.quantity, tier.price) for tier in tiers],
    )
    return [PriceRow(tier=tier, figures=row) for tier, row in zip(tiers, figures, strict=True)]


def product_page(product: Product) -> ProductPage:
    """Assemble the page of a product loaded with ``product_detail_queryset``.

    Dosages without an active tier are left out of the price tables; controlled substances
    get no price tables at all, since they are information pages only.
    """
    tables: list[DosageTable] = []
    if not product.is_controlled:
        for dosage in product.dosages.all():
            if dosage.active_tiers:
                tables.append(
                    DosageTable(dosage=dosage, rows=price_rows(dosage, dosage.active_tiers))
                )
    notes = list(product.safety_notes.all())
    return ProductPage(
        product=product,
        tables=tables,
        info_sections=list(product.info_sections.all()),
        dosing_guidelines=list(product.dosing_guidelines.all()),
        contraindications=[n for n in notes if n.kind == SafetyNote.Kind.CONTRAINDICATION],
        interactions=[n for n in notes if n.kind == SafetyNote.Kind.INTERACTION],
        side_effects=[n for n in notes if n.kind == SafetyNote.Kind.SIDE_EFFECT],
        faqs=list(product.faqs.all()),
    )


# --- Structured data (schema.org) -------------------------------------------------------------

PRESCRIPTION_STATUS = {
    LegalClass.GENERAL_SALE: "OTC",
    LegalClass.PHARMACY: "OTC",
    LegalClass.PRESCRIPTION: "PrescriptionOnly",
    LegalClass.CONTROLLED: "PrescriptionOnly",
}


def product_structured_data(page: ProductPage, *, url: str) -> dict:
    """schema.org Drug/Product with an AggregateOffer over the active tiers (none if not sold)."""
    product = page.product
    data: dict = {
        "@context": "https://schema.org",
        "@type": ["Drug", "Product"],
        "name": product.name,
        "description": product.summary,
        "url": url,
        "category": product.category.name,
        "activeIngredient": product.active_ingredient,
        "nonProprietaryName": product.active_ingredient,
        "dosageForm": product.get_dosage_form_display(),
        "isProprietary": product.kind == Product.Kind.BRAND,
        "prescriptionStatus": PRESCRIPTION_STATUS[product.legal_class],
    }
    if product.drug_class:
        data["drugClass"] = {"@type": "DrugClass", "name": product.drug_class}
    strengths = [table.dosage for table in page.tables] or list(product.dosages.all())
    if strengths:
        data["availableStrength"] = [
            {
                "@type": "DrugStrength",
                "strengthValue": format(dosage.strength_value.normalize(), "f"),
                "strengthUnit": dosage.strength_unit,
            }
            for dosage in strengths
        ]
    rows = page.all_rows if page.is_available else []
    if rows:
        prices = [row.figures.price for row in rows]
        currency = str(prices[0].currency)
        data["offers"] = {
            "@type": "AggregateOffer",
            "priceCurrency": currency,
            "lowPrice": min(p.amount for p in prices),
            "highPrice": max(p.amount for p in prices),
            "offerCount": len(rows),
            "offers": [
                {
                    "@type": "Offer",
                    "sku": row.tier.sku,
                    "name": f"{product.name} {row.tier.dosage.strength}, {row.tier.quantity} pills",
                    "price": row.figures.price.amount,
                    "priceCurrency": str(row.figures.price.currency),
                    "availability": "https://schema.org/InStock"
                    if row.in_stock
                    else "https://schema.org/OutOfStock",
                }
                for row in rows
            ],
        }
    return data
