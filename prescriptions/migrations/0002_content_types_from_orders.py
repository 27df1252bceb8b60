"""The moved models' content types follow them from ``orders`` to ``prescriptions``.

Renaming the existing rows (rather than letting Django create new ones) keeps every permission
attached to them, and so every group and user holding one (the pharmacist group's
``review_prescription``, ``approve_prescription``...), and the admin's history of those objects.
On a fresh database there is nothing to rename yet: Django creates the rows after ``migrate``.
"""

from django.db import migrations

MOVED = (
    "patientdetails",
    "prescription",
    "prescriptionreview",
    "prescriptiononfile",
    "prescriptiononfileevent",
    "cartrefill",
    "orderrefill",
    "refillremindersettings",
)


def _move(apps, source: str, target: str) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in MOVED:
        if ContentType.objects.filter(app_label=target, model=model).exists():
            continue  # already there (created by a migrate run before this migration existed)
        ContentType.objects.filter(app_label=source, model=model).update(app_label=target)


def forwards(apps, schema_editor):
    _move(apps, "orders", "prescriptions")


def backwards(apps, schema_editor):
    _move(apps, "prescriptions", "orders")


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("prescriptions", "0001_initial"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
