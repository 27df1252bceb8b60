"""Number the fills of each prescription on file, so the database refuses a fill past the refills authorised.

Existing fills are numbered by the refills used so far (oldest first). A PostgreSQL trigger
bounds the number by the prescription's ``refills_authorised`` (a check constraint cannot read
another table).
"""

from django.conf import settings
from django.db import migrations, models

BOUND_SQL = """
CREATE OR REPLACE FUNCTION orders_rxfile_fill_within_authorised() RETURNS trigger AS $$
BEGIN
  IF NEW.kind = 'fill' AND NEW.fill_number > (
    SELECT refills_authorised FROM orders_prescriptiononfile WHERE id = NEW.prescription_id
  ) THEN
    RAISE EXCEPTION 'Fill % of prescription on file % is past its authorised refills.', NEW.fill_number, NEW.prescription_id
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER orders_rxfile_fill_within_authorised
  BEFORE INSERT OR UPDATE ON orders_prescriptiononfileevent
  FOR EACH ROW EXECUTE FUNCTION orders_rxfile_fill_within_authorised();
"""
UNBOUND_SQL = """
DROP TRIGGER IF EXISTS orders_rxfile_fill_within_authorised ON orders_prescriptiononfileevent;
DROP FUNCTION IF EXISTS orders_rxfile_fill_within_authorised();
"""


def number_existing_fills(apps, schema_editor):
    Event = apps.get_model("orders", "PrescriptionOnFileEvent")
    used: dict = {}
    for fill in Event.objects.filter(kind="fill").order_by("prescription_id", "created_at", "id"):
        if fill.prescription_id in used and fill.refills_counted == 0:
            raise RuntimeError(
                f"Fill {fill.pk} of prescription on file {fill.prescription_id} used no refill (a clamped over-fill); "
                "correct it by hand before migrating."
            )
        used[fill.prescription_id] = used.get(fill.prescription_id, 0) + fill.refills_counted
        Event.objects.filter(pk=fill.pk).update(fill_number=used[fill.prescription_id])


def bound(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BOUND_SQL, params=None)


def unbound(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(UNBOUND_SQL, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0007_remove_unused_event_and_review_kinds"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="prescriptiononfileevent",
            name="fill_number",
            field=models.PositiveSmallIntegerField(blank=True, null=True),
        ),
        migrations.RunPython(number_existing_fills, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="prescriptiononfileevent",
            constraint=models.UniqueConstraint(
                condition=models.Q(("kind", "fill")),
                fields=("prescription", "fill_number"),
                name="orders_rxfile_fill_number_unique",
            ),
        ),
        migrations.AddConstraint(
            model_name="prescriptiononfileevent",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("kind", "fill"), _negated=True),
                    models.Q(
                        ("fill_number__isnull", False),
                        models.Q(
                            models.Q(("fill_number", 0), ("refills_counted", 0)),
                            models.Q(
                                ("fill_number__gte", models.F("refills_counted")),
                                ("refills_counted__gte", 1),
                            ),
                            _connector="OR",
                        ),
                    ),
                    _connector="OR",
                ),
                name="orders_rxfile_fill_numbered",
            ),
        ),
        migrations.RunPython(bound, unbound),
    ]
