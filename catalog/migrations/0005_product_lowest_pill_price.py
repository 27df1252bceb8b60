"""The stored lowest per-pill price of each product (the listing's price order), filled for existing rows.

The SQL is the one ``catalog.models.lowest_per_pill_sql`` writes, spelled out here so this
migration does not change when the app's code does.
"""

from django.db import migrations, models


def fill(apps, schema_editor):
    price = 't."price"'
    if schema_editor.connection.vendor == "sqlite":
        price = f"CAST({price} AS REAL)"
    schema_editor.execute(
        'UPDATE "catalog_product" SET "lowest_pill_price" = ('
        f'SELECT MIN({price} / t."quantity") FROM "catalog_packagetier" t '
        'INNER JOIN "catalog_dosage" d ON t."dosage_id" = d."id" '
        'WHERE d."product_id" = "catalog_product"."id" AND t."is_active")'
    )


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0004_category_and_featured_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="product",
            name="lowest_pill_price",
            field=models.DecimalField(
                blank=True, decimal_places=12, editable=False, max_digits=24, null=True
            ),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=True),
        migrations.AddIndex(
            model_name="product",
            index=models.Index(
                condition=models.Q(("is_published", True)),
                fields=["lowest_pill_price", "name", "id"],
                name="catalog_product_price_idx",
            ),
        ),
    ]
