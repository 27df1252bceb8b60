"""The stored lowest per-pill price of each product (``Product.lowest_pill_price``), kept exact.

Why stored: sorting the listing by "lowest price per pill" computed the minimum over every
product's tiers before taking a page, a cost growing with the whole catalog; stored
and indexed (``catalog_product_price_idx``), a page of that order is an index range like the
name order's.

The value is ``MIN(price / quantity)`` over the product's active tiers (NULL without one): the
same SQL as the cards' "from $X per pill" (``models.lowest_per_pill_sql``, REAL division on
SQLite), rounded to the column's 12 places (two different per-pill prices of packs up to
100,000 pills differ by more than 1e-12, so the rounding never merges two of them).

Every catalog write that can change it recomputes it in the same transaction (``PackageTier``
and ``Dosage`` ``save``/``delete`` and their querysets' ``update``/``delete``/``bulk_create``/
``bulk_update``, through ``lowest_price_kept`` in ``catalog.models``, which holds the locking
and recomputing pieces because they read its tables): writes to other fields (the stock moves
of every checkout) pay nothing. Each such write, whatever the number of rows, costs two statements more:

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

from collections.abc import Iterable

from django.db import connections

from .models import Dosage, PackageTier, lowest_price_names


def fill(*, using: str, where: str = "", params: Iterable = ()) -> int:
    """Set the stored minimum of the products matching the SQL ``where`` (on the product table) from
    one grouped pass over the active tiers; products without an active tier are left as they are
    (NULL when new). For writes that bypass the models (``generate_catalog``'s new products). On a
    large catalog it is slow, nearly all of it writing the new row versions and their entries in
    every index of the table (the trigram ones too), as was the migration that added the column
    (figures: docs/performance.md). The caller retires the caches.
    """
    connection = connections[using]
    table, column, pk = lowest_price_names(connection)
    quote = connection.ops.quote_name
    tier, dosage = PackageTier._meta, Dosage._meta
    price = f"t.{quote(tier.get_field('price').column)}"
    if connection.vendor == "sqlite":
        price = f"CAST({price} AS REAL)"
    product_id = quote(dosage.get_field("product").column)
    grouped = (
        f"SELECT d.{product_id} AS product_id, MIN({price} / t.{quote(tier.get_field('quantity').column)}) AS lowest "
        f"FROM {quote(tier.db_table)} t INNER JOIN {quote(dosage.db_table)} d "
        f"ON t.{quote(tier.get_field('dosage').column)} = d.{quote(dosage.pk.column)} "
        f"WHERE t.{quote(tier.get_field('is_active').column)} GROUP BY d.{product_id}"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {column} = m.lowest FROM ({grouped}) m WHERE {table}.{pk} = m.product_id"
            + (f" AND {where}" if where else ""),
            list(params),
        )
        return cursor.rowcount
