"""Rx numbers and fill dates for order lines dispensed before the receipt snapshot existed.

Read from the fill rows the prescriptions on file already keep (one per prescription and order):
a first fill names the source order's line of the recorded dosage, a refill names its line
through ``OrderRefill``. The number's format is copied here on purpose (a migration must not
import the app's code, which may change): ``RX`` and the prescription's id in seven digits.
"""

from django.db import migrations


def backfill(apps, schema_editor):
    OrderLine = apps.get_model("orders", "OrderLine")
    Event = apps.get_model("prescriptions", "PrescriptionOnFileEvent")
    OrderRefill = apps.get_model("prescriptions", "OrderRefill")
    fills = Event.objects.filter(kind="fill", order__isnull=False).select_related("prescription")
    for fill in fills.order_by("pk").iterator():
        record = fill.prescription
        if fill.fill_number == 0:
            line_ids = OrderLine.objects.filter(
                order_id=fill.order_id,
                requires_prescription=True,
                tier__dosage_id=record.dosage_id,
                rx_number="",
            ).values_list("pk", flat=True)[:1]
        else:
            line_ids = OrderRefill.objects.filter(
                order_id=fill.order_id, prescription_id=record.pk, line__isnull=False
            ).values_list("line_id", flat=True)
        OrderLine.objects.filter(pk__in=list(line_ids), rx_number="").update(
            rx_number=f"RX{record.pk:07d}", filled_on=fill.filled_on
        )


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0011_receipt_snapshots"),
        ("prescriptions", "0004_continuing_care_transfers_renewals"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
