"""Forms for prescriptions on file (issues #16, #21): the pharmacist's approval (which records the
prescription), the amount preview, the customer's reminder settings."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from djmoney.money import Money

from .forms import OneTimeForm
from .on_file_record import RecordInput, record_defaults


def _add_pack_fields(form: forms.Form, lines) -> None:
    """One box per order line: the packs to dispense, 0 to the number ordered."""
    for line in lines:
        form.fields[f"line_{line.pk}"] = forms.IntegerField(
            label=f"{line.product_name} {line.strength}, {line.pack_size} pills (ordered {line.packages})",
            min_value=0,
            max_value=line.packages,
            initial=line.packages,
            widget=forms.NumberInput(attrs={"inputmode": "numeric", "class": "pack-input"}),
        )


class PacksForm(forms.Form):
    """Only the packs: what the amount preview needs (the record fields may still be empty)."""

    def __init__(self, *args, lines=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.lines = list(lines)
        _add_pack_fields(self, self.lines)

    def approved_packages(self) -> dict[int, int]:
        return {line.pk: self.cleaned_data[f"line_{line.pk}"] for line in self.lines}


class ApproveOrderForm(OneTimeForm):
    """The one approval of a new prescription order.

    For each prescription item, the prescription as written, kept on file (the refills written
    have no default: the pharmacist enters them, 0 included); the packs to dispense (fewer than
    ordered approves with changes and needs a note for the customer); and the amount the button
    named, which the server compares with what it would capture.
    """

    note = forms.CharField(
        label="Note (needed if you dispense fewer packs than ordered; the customer reads it)",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    # The amount the button named; the page always sends it (a form without it captures nothing).
    shown_capture = forms.DecimalField(max_digits=10, decimal_places=2, widget=forms.HiddenInput)

    def __init__(self, *args, order=None, lines=(), refill_line_ids=frozenset(), **kwargs):
        super().__init__(*args, **kwargs)
        self.order = order
        self.all_lines = list(lines)
        # Refill lines are already on file; the caller reads their ids in one query.
        self.lines = [
            line
            for line in self.all_lines
            if line.requires_prescription and line.pk not in refill_line_ids
        ]
        self.line_groups = []
        for line in self.lines:
            defaults = record_defaults(order=order, line=line)
            p = f"rec_{line.pk}"
            self.fields[f"{p}_directions"] = forms.CharField(
                label="Directions, as written", max_length=300
            )
            self.fields[f"{p}_daily_dose"] = forms.DecimalField(
                label="Daily dose (pills a day)",
                min_value=Decimal("0.25"),
                max_digits=6,
                decimal_places=2,
            )
            self.fields[f"{p}_quantity_per_fill"] = forms.IntegerField(
                label="Quantity per fill (pills)",
                min_value=1,
                initial=defaults["quantity_per_fill"],
            )
            self.fields[f"{p}_refills_authorised"] = forms.IntegerField(
                label="Refills written on the prescription (0 if none)", min_value=0, max_value=99
            )
            self.fields[f"{p}_date_written"] = forms.DateField(
                label="Date written",
                initial=defaults["date_written"],
                widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            )
            self.fields[f"{p}_expires_on"] = forms.DateField(
                label="Valid until (empty: one year from written)",
                required=False,
                widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            )
            self.line_groups.append(
                {
                    "line": line,
                    "fields": [
                        self[f"{p}_{n}"]
                        for n in (
                            "directions",
                            "daily_dose",
                            "quantity_per_fill",
                            "refills_authorised",
                            "date_written",
                            "expires_on",
                        )
                    ],
                }
            )
        _add_pack_fields(self, self.all_lines)

    @property
    def pack_fields(self):
        return [self[f"line_{line.pk}"] for line in self.all_lines]

    def approved_packages(self) -> dict[int, int]:
        return {line.pk: self.cleaned_data[f"line_{line.pk}"] for line in self.all_lines}

    def shown_capture_money(self) -> Money:
        return Money(self.cleaned_data["shown_capture"], str(self.order.total.currency))

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


class RefillRefuseForm(OneTimeForm):
    reason = forms.CharField(
        label="Your reason (the patient reads it; needed when every check passes)",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class ReminderSettingsForm(forms.Form):
    reminders = forms.BooleanField(
        label="Email me before my prescription medicine runs out", required=False
    )
    name_medicine = forms.BooleanField(
        label="Name the medicine in the email (it is never in the subject line)", required=False
    )
