"""Trigram indexes without GIN's pending list (PostgreSQL only).

With ``fastupdate`` on (the default), rows inserted in bulk (an import, ``generate_catalog``)
wait in a pending list that every search reads sequentially until autovacuum merges it: after
loading 10,000 products that list held ~8,000 entries and searches were several times slower
for a while. Products are added rarely, so inserting straight into the index is the better
trade. Turning the option off does not merge what is already pending, hence the clean-up call.
"""

from django.db import migrations

SEARCH_COLUMNS = ("name", "brand_names", "active_ingredient", "indications")


def set_fastupdate(enabled: bool):
    def operation(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for column in SEARCH_COLUMNS:
            index = f"catalog_product_{column}_trgm"
            schema_editor.execute(
                f'ALTER INDEX "{index}" SET (fastupdate = {"on" if enabled else "off"})'
            )
            if not enabled:
                schema_editor.execute(f"SELECT gin_clean_pending_list('\"{index}\"'::regclass)")

    return operation


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0002_listing_indexes"),
    ]

    operations = [
        migrations.RunPython(set_fastupdate(False), set_fastupdate(True), elidable=False),
    ]
