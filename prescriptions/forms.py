"""Forms for the prescription step of checkout and for the pharmacist's review actions."""

from __future__ import annotations

import uuid

from django import forms
from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string

from .files import check_prescription_upload
from .intake import PrescriptionIntake, PrescriptionItem, age_on

UPLOAD, PRESCRIBER = "upload", "prescriber"
METHOD_CHOICES = [
    (UPLOAD, "I will upload a photo or scan of the prescription"),
    (PRESCRIBER, "Please get it from my prescriber (give their details)"),
]


class PrescriptionCheckoutForm(forms.Form):
    """The patient, and for each prescription item a prescription copy or the prescriber's details.

    ``lines`` are the cart's prescription lines (``CartLineSummary``); fields are made per line,
    named by the package tier so the answers reach the matching order line.
    """

    patient_name = forms.CharField(label="Patient's name (as on the prescription)", max_length=150)
    date_of_birth = forms.DateField(
        label="Patient's date of birth",
        widget=forms.DateInput(attrs={"type": "date", "autocomplete": "bday"}, format="%Y-%m-%d"),
        input_formats=["%Y-%m-%d", "%m/%d/%Y"],
        help_text="Format YYYY-MM-DD, or MM/DD/YYYY.",
    )
    allergies = forms.CharField(
        label="Allergies (optional)",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Medicine and other allergies, with the reaction if you know it.",
    )
    current_medicines = forms.CharField(
        label="Medicines the patient takes now (optional)",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Include over-the-counter medicines, vitamins and herbal remedies.",
    )

    def __init__(self, *args, lines=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.lines = [line for line in lines if line.requires_prescription]
        self.line_fields = []
        for line in self.lines:
            prefix = f"rx_{line.tier_id}"
            self.fields[f"{prefix}_method"] = forms.ChoiceField(
                label="How will you give us the prescription?",
                choices=METHOD_CHOICES,
                widget=forms.RadioSelect,
                initial=UPLOAD,
            )
            self.fields[f"{prefix}_file"] = forms.FileField(
                label="Prescription (PDF, JPEG or PNG, up to "
                f"{settings.PRESCRIPTION_MAX_UPLOAD_BYTES // (1024 * 1024)} MB)",
                required=False,
                widget=forms.ClearableFileInput(
                    attrs={"accept": "application/pdf,image/jpeg,image/png"}
                ),
            )
            self.fields[f"{prefix}_prescriber_name"] = forms.CharField(
                label="Prescriber's name", max_length=150, required=False
            )
            self.fields[f"{prefix}_prescriber_phone"] = forms.CharField(
                label="Prescriber's phone",
                max_length=30,
                required=False,
                widget=forms.TextInput(attrs={"type": "tel"}),
            )
            self.fields[f"{prefix}_prescriber_licence"] = forms.CharField(
                label="Prescriber's licence or NPI number", max_length=40, required=False
            )
            self.line_fields.append(
                {
                    "line": line,
                    "method": self[f"{prefix}_method"],
                    "file": self[f"{prefix}_file"],
                    "prescriber_name": self[f"{prefix}_prescriber_name"],
                    "prescriber_phone": self[f"{prefix}_prescriber_phone"],
                    "prescriber_licence": self[f"{prefix}_prescriber_licence"],
                }
            )
        self._uploads = {}

    def clean_date_of_birth(self):
        born = self.cleaned_data["date_of_birth"]
        today = timezone.localdate()
        if born > today:
            raise forms.ValidationError("The date of birth is in the future.")
        if age_on(born=born, today=today) > 130:
            raise forms.ValidationError("Please check the year of birth.")
        minimum = int(getattr(settings, "PRESCRIPTION_MINIMUM_AGE", 18) or 0)
        if minimum and age_on(born=born, today=today) < minimum:
            raise forms.ValidationError(
                f"We can dispense prescription medicines online only for patients aged {minimum} or over. "
                "Please call us: the pharmacist can advise."
            )
        return born

    def clean(self):
        cleaned = super().clean()
        for line in self.lines:
            prefix = f"rx_{line.tier_id}"
            method = cleaned.get(f"{prefix}_method")
            if method == UPLOAD:
                upload = cleaned.get(f"{prefix}_file")
                if not upload:
                    self.add_error(
                        f"{prefix}_file", "Please choose the file with your prescription."
                    )
                    continue
                try:
                    self._uploads[line.tier_id] = check_prescription_upload(upload)
                except forms.ValidationError as exc:
                    self.add_error(f"{prefix}_file", exc)
            elif method == PRESCRIBER:
                for name, label in (
                    ("prescriber_name", "the prescriber's name"),
                    ("prescriber_phone", "the prescriber's phone number"),
                    ("prescriber_licence", "the prescriber's licence or NPI number"),
                ):
                    if not (cleaned.get(f"{prefix}_{name}") or "").strip():
                        self.add_error(f"{prefix}_{name}", f"Please give {label}.")
        return cleaned

    def intake(self) -> PrescriptionIntake:
        data = self.cleaned_data
        items = []
        for line in self.lines:
            prefix = f"rx_{line.tier_id}"
            items.append(
                PrescriptionItem(
                    tier_id=line.tier_id,
                    upload=self._uploads.get(line.tier_id)
                    if data[f"{prefix}_method"] == UPLOAD
                    else None,
                    prescriber_name=data.get(f"{prefix}_prescriber_name", ""),
                    prescriber_phone=data.get(f"{prefix}_prescriber_phone", ""),
                    prescriber_licence=data.get(f"{prefix}_prescriber_licence", ""),
                )
            )
        return PrescriptionIntake(
            patient_name=data["patient_name"],
            date_of_birth=data["date_of_birth"],
            allergies=data.get("allergies", ""),
            current_medicines=data.get("current_medicines", ""),
            items=tuple(items),
        )


def _patient_profile(user) -> dict | None:
    """The signed-in customer's saved patient details, from ``settings.PATIENT_PROFILE_LOOKUP``.

    Accounts sit above orders (they list a customer's orders), so orders never imports them: the
    project names the function that reads a profile (``accounts.services.patient_profile_for``)
    and a shop without accounts leaves it empty.
    """
    path = getattr(settings, "PATIENT_PROFILE_LOOKUP", "")
    return import_string(path)(user) if path else None


def prefill_from_profile(profile: dict | None) -> dict:
    """Initial values from the patient profile (``_patient_profile``): the same for every item."""
    if not profile:
        return {}
    return {
        key: profile.get(key) or "" for key in ("date_of_birth", "allergies", "current_medicines")
    }


# --- Review actions -------------------------------------------------------------------------


class OneTimeForm(forms.Form):
    """Carries a fresh key per rendered form: submitting the same form twice acts once."""

    submission_key = forms.UUIDField(widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("initial", {}).setdefault("submission_key", uuid.uuid4())
        super().__init__(*args, **kwargs)


class ApproveForm(OneTimeForm):
    note = forms.CharField(label="Note for the record (optional)", required=False, max_length=2000)


class ApproveWithChangesForm(OneTimeForm):
    note = forms.CharField(
        label="Why the order was changed (the customer will read this)",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args, lines=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.lines = list(lines)
        for line in self.lines:
            self.fields[f"line_{line.pk}"] = forms.IntegerField(
                label=f"{line.product_name} {line.strength}, {line.pack_size} pills (ordered {line.packages})",
                min_value=0,
                max_value=line.packages,
                initial=line.packages,
                widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
            )

    @property
    def line_bound_fields(self):
        return [self[f"line_{line.pk}"] for line in self.lines]

    def approved_packages(self) -> dict[int, int]:
        return {line.pk: self.cleaned_data[f"line_{line.pk}"] for line in self.lines}


class RejectForm(OneTimeForm):
    reason = forms.CharField(
        label="Reason (the customer will read this)",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class RequestInformationForm(OneTimeForm):
    message = forms.CharField(
        label="Question for the customer", max_length=2000, widget=forms.Textarea(attrs={"rows": 3})
    )


class ShipForm(forms.Form):
    carrier = forms.CharField(label="Carrier", max_length=60)
    tracking_number = forms.CharField(label="Tracking number", max_length=60)


def prescription_form_for(request, *, lines, user=None) -> PrescriptionCheckoutForm | None:
    """The checkout's prescription step, or None when no line needs a prescription.

    A signed-in customer's patient profile (``settings.PATIENT_PROFILE_LOOKUP``) prefills
    the patient's health details and, for each item, the prescriber.
    """
    lines = [line for line in lines if line.requires_prescription]
    if not lines:
        return None
    initial = {}
    profile = None
    if user is not None:
        profile = _patient_profile(user)
        initial["patient_name"] = user.get_full_name()
    initial.update(prefill_from_profile(profile))
    if profile:
        for line in lines:
            for key in ("prescriber_name", "prescriber_phone", "prescriber_licence"):
                initial[f"rx_{line.tier_id}_{key}"] = profile.get(key) or ""
    if request.method == "POST":
        return PrescriptionCheckoutForm(request.POST, request.FILES, lines=lines, initial=initial)
    return PrescriptionCheckoutForm(lines=lines, initial=initial)
