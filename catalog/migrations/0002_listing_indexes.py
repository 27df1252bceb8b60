"""Indexes for the listing and search on a large catalogue.

The listing orders published products by name: a partial (name, id) index lets a page, also a
late one, be read in order instead of sorting every product. Search is a case-insensitive
substring match (``UPPER(col) LIKE UPPER('%word%')``) on four columns; on PostgreSQL trigram GIN
indexes on exactly those expressions answer it without reading every product. SQLite has no
trigram indexes, so there the search keeps scanning (fine for a small shop); the trigram part
runs only on PostgreSQL.
"""

from django.db import migrations, models

SEARCH_COLUMNS = ("name", "brand_names", "active_ingredient", "indications")


def trigram_index_name(column: str) -> str:
    return f"catalog_product_{column}_trgm"


def create_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for column in SEARCH_COLUMNS:
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS "{trigram_index_name(column)}" ON "catalog_product" '
            f'USING gin ((UPPER("{column}"::text)) gin_trgm_ops)'
        )


def drop_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in SEARCH_COLUMNS:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{trigram_index_name(column)}"')


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0001_initial"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="product",
            index=models.Index(
                condition=models.Q(("is_published", True)),
                fields=["name", "id"],
                name="catalog_product_listing_idx",
            ),
        ),
        migrations.RunPython(create_trigram_indexes, drop_trigram_indexes, elidable=False),
    ]
