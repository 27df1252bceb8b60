"""The stored lowest per-pill price of each product (``Product.lowest_pill_price``), kept exact.

Why stored: sorting the listing by "lowest price per pill" computed the minimum over every
product's tiers before taking a page (~600-900 ms at 100,000 products / 1,000,000 tiers); stored
and indexed (``catalog_product_price_idx``), a page of that order is an index range like the
name order's.

The value is ``MIN(price / quantity)`` over the product's active tiers (NULL without one): the
same SQL as the cards' "from $X per pill" (``selectors.lowest_per_pill_sql``, REAL division on
SQLite), rounded to the column's 12 places (two different per-pill prices of packs up to
100,000 pills differ by more than 1e-12, so the rounding never merges two of them).

Every catalog write that can change it recomputes it in the same transaction (``PackageTier``
and ``Dosage`` ``save``/``delete`` and their querysets' ``update``/``delete``/``bulk_create``/
``bulk_update``, in ``catalog.models``): writes to other fields (the stock moves of every
checkout) pay nothing. Each such write, whatever the number of rows, costs two statements more:

1. ``SELECT id FROM catalog_product WHERE ... ORDER BY id FOR UPDATE``, *before* the write: the
   affected products are locked (in id order, so two writers cannot deadlock on them), and for a
   write whose filter or new values decide which products are affected (``update(is_active=...)``,
   a tier moved to another dosage) they are read while the old rows are still there;
2. after the write, ``UPDATE catalog_product SET lowest_pill_price = (correlated MIN) WHERE id IN
   (...)``: a *new* statement, so in READ COMMITTED its snapshot sees every change committed by a
   transaction that held those locks before us. (Recomputing in the statement that takes the locks
   would not: PostgreSQL re-checks a row it waited for, but evaluates the subquery on the snapshot
   taken before the wait, so two staff editing tiers of one product at once could leave the first
   one's change out.)

Writes that bypass the models (``generate_catalog``'s ``COPY``) call ``fill`` themselves.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from django.db import connections, transaction
from django.db.models import Q

from . import page_cache

#: The tier fields the minimum depends on (with the money field's currency column).
TIER_FIELDS = frozenset({"price", "price_currency", "quantity", "is_active", "dosage", "dosage_id"})
#: The dosage fields it depends on (a dosage moved to another product).
DOSAGE_FIELDS = frozenset({"product", "product_id"})


def touches(fields: Iterable[str] | None, relevant: frozenset[str]) -> bool:
    """Whether a write of ``fields`` (None: all of them) can change a lowest price."""
    return fields is None or bool(relevant.intersection(fields))


def lock(*, using: str, product_ids: Iterable[int] = (), dosages=None, tiers=None) -> list[int]:
    """Lock the products named, those of the ``dosages`` and of the ``tiers`` (querysets); their ids.

    One statement; the querysets become subqueries (no rows travel to Python).
    """
    from .models import Dosage, Product

    condition = Q(pk__in=list(product_ids))
    if dosages is not None:
        condition |= Q(pk__in=dosages.order_by().values("product_id"))
    if tiers is not None:
        condition |= Q(pk__in=Dosage.objects.filter(pk__in=tiers.order_by().values("dosage_id")).values("product_id"))
    return list(
        Product._base_manager.using(using).filter(condition).order_by("pk").select_for_update().values_list("pk", flat=True)
    )


@contextmanager
def kept(*, using: str, product_ids: Iterable[int] = (), dosages=None, tiers=None) -> Iterator[None]:
    """Around a write that can change lowest prices: ``lock`` the products (``lock``'s arguments)
    before it and ``recompute`` them after it, in one transaction (no savepoint: no extra
    statements inside an outer one). If the write raises, nothing is recomputed and it rolls back.
    """
    with transaction.atomic(using=using, savepoint=False):
        ids = lock(using=using, product_ids=product_ids, dosages=dosages, tiers=tiers)
        yield
        recompute(using=using, product_ids=ids)


def recompute(*, using: str, product_ids: list[int]) -> None:
    """Set the stored minimum of these (locked) products from their tiers: one UPDATE.

    Raw SQL, not ``Product.objects.update``: that would retire the product counts and listing
    indexes (the set of products is unchanged); only the price order's memo (``memoize(...,
    prices_only=True)``) and the pages are retired.
    """
    if not product_ids:
        return
    connection = connections[using]
    table, column, pk = _names(connection)
    placeholders = ", ".join(["%s"] * len(product_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {column} = ({_minimum_sql(connection)}) WHERE {pk} IN ({placeholders})",
            list(product_ids),
        )
    page_cache.catalog_changed(using=using, products=False, prices=True)


def fill(*, using: str, where: str = "", params: Iterable = ()) -> int:
    """Set the stored minimum of the products matching the SQL ``where`` (on the product table) from
    one grouped pass over the active tiers; products without an active tier are left as they are
    (NULL when new). For writes that bypass the models (``generate_catalog``'s new products). At
    100,000 products it takes ~30 s, nearly all of it writing the new row versions and their
    entries in every index of the table (the trigram ones too); the migration that added the column
    took as long. The caller retires the caches.
    """
    from .models import Dosage, PackageTier

    connection = connections[using]
    table, column, pk = _names(connection)
    quote = connection.ops.quote_name
    tier, dosage = PackageTier._meta, Dosage._meta
    price = f't.{quote(tier.get_field("price").column)}'
    if connection.vendor == "sqlite":
        price = f"CAST({price} AS REAL)"
    product_id = quote(dosage.get_field("product").column)
    grouped = (
        f'SELECT d.{product_id} AS product_id, MIN({price} / t.{quote(tier.get_field("quantity").column)}) AS lowest '
        f'FROM {quote(tier.db_table)} t INNER JOIN {quote(dosage.db_table)} d '
        f'ON t.{quote(tier.get_field("dosage").column)} = d.{quote(dosage.pk.column)} '
        f'WHERE t.{quote(tier.get_field("is_active").column)} GROUP BY d.{product_id}'
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {column} = m.lowest FROM ({grouped}) m WHERE {table}.{pk} = m.product_id"
            + (f" AND {where}" if where else ""),
            list(params),
        )
        return cursor.rowcount


def _names(connection) -> tuple[str, str, str]:
    from .models import Product

    quote = connection.ops.quote_name
    return (quote(Product._meta.db_table), quote(Product._meta.get_field("lowest_pill_price").column),
            quote(Product._meta.pk.column))


def _minimum_sql(connection) -> str:
    from .selectors import lowest_per_pill_sql

    return lowest_per_pill_sql(vendor=connection.vendor)
