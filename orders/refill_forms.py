"""Forms for prescriptions on file (issue #16): the pharmacist's record, the customer's settings."""
from __future__ import annotations

from decimal import Decimal

from django import forms

from .prescription_forms import OneTimeForm
from .prescription_records import RecordInput, record_defaults


class RecordOnFileForm(OneTimeForm):
    """Approve as ordered and keep each prescription item on file; one set of fields per line."""

    note = forms.CharField(label="Note for the record (optional)", required=False, max_length=2000)

    def __init__(self, *args, order=None, lines=(), refill_line_ids=frozenset(), **kwargs):
        super().__init__(*args, **kwargs)
        # Refill lines are already on file; the caller reads their ids in one query.
        self.lines = [line for line in lines if line.requires_prescription and line.pk not in refill_line_ids]
        self.line_groups = []
        for line in self.lines:
            defaults = record_defaults(order=order, line=line)
            p = f"rec_{line.pk}"
            self.fields[f"{p}_directions"] = forms.CharField(label="Directions", max_length=300, initial="")
            self.fields[f"{p}_daily_dose"] = forms.DecimalField(
                label="Daily dose (pills a day)", min_value=Decimal("0.25"), max_digits=6, decimal_places=2
            )
            self.fields[f"{p}_quantity_per_fill"] = forms.IntegerField(
                label="Quantity per fill (pills)", min_value=1, initial=defaults["quantity_per_fill"]
            )
            self.fields[f"{p}_refills_authorised"] = forms.IntegerField(
                label="Refills authorised", min_value=0, max_value=99, initial=defaults["refills_authorised"]
            )
            self.fields[f"{p}_date_written"] = forms.DateField(
                label="Date written", initial=defaults["date_written"], widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
            )
            self.fields[f"{p}_expires_on"] = forms.DateField(
                label="Valid until (empty: one year from written)", required=False,
                widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            )
            self.line_groups.append({"line": line, "fields": [self[f"{p}_{n}"] for n in (
                "directions", "daily_dose", "quantity_per_fill", "refills_authorised", "date_written", "expires_on")]})

    def records(self) -> list[RecordInput]:
        data = self.cleaned_data
        return [
            RecordInput(
                line_id=line.pk,
                directions=data[f"rec_{line.pk}_directions"],
                daily_dose=data[f"rec_{line.pk}_daily_dose"],
                quantity_per_fill=data[f"rec_{line.pk}_quantity_per_fill"],
                refills_authorised=data[f"rec_{line.pk}_refills_authorised"],
                date_written=data[f"rec_{line.pk}_date_written"],
                expires_on=data.get(f"rec_{line.pk}_expires_on"),
            )
            for line in self.lines
        ]


class ReminderSettingsForm(forms.Form):
    reminders = forms.BooleanField(label="Email me before my prescription medicine runs out", required=False)
    name_medicine = forms.BooleanField(
        label="Name the medicine in the email (it is never in the subject line)", required=False
    )
