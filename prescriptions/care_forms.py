"""Forms for transfers in and renewal requests: typed fields only; the rules are in the services."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from .renewals import RenewInput
from .transfers import ReceiveInput, TransferInput, transferable_dosages

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class TransferRequestForm(forms.Form):
    """The patient's request. The medicine is a catalog strength; the service says why one is refused."""

    patient_name = forms.CharField(label="Patient's full name", max_length=150)
    patient_date_of_birth = forms.DateField(label="Patient's date of birth", widget=DATE)
    # Any whole number passes the form: a strength not offered (a controlled one) is refused by
    # the service with its reason, not with "not one of the choices".
    dosage = forms.IntegerField(label="Medicine and strength", min_value=1, widget=forms.Select)
    pharmacy_name = forms.CharField(label="Pharmacy that has the prescription now", max_length=150)
    pharmacy_phone = forms.CharField(label="That pharmacy's phone number", max_length=30)
    pharmacy_rx_number = forms.CharField(
        label="Prescription number (on the label)", max_length=40, required=False
    )
    prescriber_name = forms.CharField(
        label="Prescriber (doctor or nurse practitioner)", max_length=150
    )
    prescriber_phone = forms.CharField(label="Prescriber's phone", max_length=30, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [("", "Choose the medicine and strength")]
        choices += [
            (dosage.pk, f"{dosage.product.name} {dosage.strength}")
            for dosage in transferable_dosages()
        ]
        self.fields["dosage"].widget.choices = choices

    def as_input(self) -> TransferInput:
        data = self.cleaned_data
        return TransferInput(
            patient_name=data["patient_name"],
            patient_date_of_birth=data["patient_date_of_birth"],
            pharmacy_name=data["pharmacy_name"],
            pharmacy_phone=data["pharmacy_phone"],
            pharmacy_rx_number=data["pharmacy_rx_number"],
            dosage_id=data["dosage"],
            prescriber_name=data["prescriber_name"],
            prescriber_phone=data["prescriber_phone"],
        )


class NoteForm(forms.Form):
    note = forms.CharField(
        label="Note (for the record)",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label="Reason (the patient reads it)",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class _PrescriptionFields(forms.Form):
    directions = forms.CharField(label="Directions, as written", max_length=300)
    daily_dose = forms.DecimalField(
        label="Daily dose (pills a day)", min_value=Decimal("0.25"), max_digits=6, decimal_places=2
    )
    quantity_per_fill = forms.IntegerField(label="Pills per fill", min_value=1, max_value=10_000)
    date_written = forms.DateField(label="Date written", widget=DATE)
    prescriber_name = forms.CharField(label="Prescriber's name", max_length=150)
    prescriber_licence = forms.CharField(label="Prescriber's licence or NPI number", max_length=40)
    prescriber_phone = forms.CharField(label="Prescriber's phone", max_length=30, required=False)


class ReceiveForm(_PrescriptionFields):
    """What the other pharmacy gave when it transferred the prescription."""

    refills_left = forms.IntegerField(
        label="Fills left to transfer (refills remaining there)", min_value=0, max_value=99
    )
    expires_on = forms.DateField(label="Valid until", widget=DATE)
    last_filled_on = forms.DateField(label="Last filled there on", widget=DATE, required=False)
    last_fill_pills = forms.IntegerField(
        label="Pills in that last fill", min_value=1, max_value=10_000, required=False
    )
    note = forms.CharField(label="Note (for the record)", required=False, max_length=2000)

    def as_input(self) -> ReceiveInput:
        return ReceiveInput(**self.cleaned_data)


class RenewForm(_PrescriptionFields):
    """The prescriber's renewal, as written on the returned request."""

    refills_written = forms.IntegerField(label="Refills written", min_value=0, max_value=99)
    expires_on = forms.DateField(
        label="Valid until (empty: a year from the date written)", widget=DATE, required=False
    )
    note = forms.CharField(label="Note (for the record)", required=False, max_length=2000)

    def as_input(self) -> RenewInput:
        return RenewInput(**self.cleaned_data)
