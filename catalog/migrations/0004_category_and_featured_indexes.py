"""Indexes for two catalog reads that otherwise read every product (measured at 100,000 products).

- The home page's featured products (``is_featured``, by name, 8 of them): a sequential scan of
  the whole table on every home page rendered afresh. A partial index on the few
  featured products makes it a read of those rows only.
- A category's listing (``category_id = …`` by ``(name, id)``): the category's products were
  sorted in full for each page (and for the listing index), so a large category cost more the
  larger it grew; with ``(category, name, id)`` a page is read in order from the index, like the
  plain listing's ``catalog_product_listing_idx``.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0003_trigram_indexes_without_pending_list"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="product",
            index=models.Index(
                condition=models.Q(("is_published", True)),
                fields=["category", "name", "id"],
                name="catalog_product_cat_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="product",
            index=models.Index(
                condition=models.Q(("is_featured", True), ("is_published", True)),
                fields=["name"],
                name="catalog_product_featured_idx",
            ),
        ),
    ]
