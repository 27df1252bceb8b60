"""Forms of the auto-refill pages: the opt-in (pack and address), the consent, a new date."""

from __future__ import annotations

from django import forms

from checkout.forms import CheckoutForm
from pharmacy.us_address import zip_in_state_check

_ADDRESS = ("name", "line1", "line2", "city", "state", "zip_code", "shipping_method")


class AutoRefillForm(forms.Form):
    """The pack and where it goes, with the checkout's address fields and rules (licensed
    state, ZIP code in the state)."""

    tier_id = forms.TypedChoiceField(label="Pack", coerce=int, widget=forms.RadioSelect)
    locals().update({name: CheckoutForm.base_fields[name] for name in _ADDRESS})

    def __init__(self, *args, packs=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tier_id"].choices = [(tier.pk, f"{tier.quantity} pills") for tier in packs]
        for name, value in CheckoutForm.autocomplete.items():
            if name in self.fields:
                self.fields[name].widget.attrs["autocomplete"] = value
        for name, field in self.fields.items():
            field.widget.attrs["aria-describedby"] = f"error-{name}"

    clean_state = CheckoutForm.clean_state

    def clean(self):
        cleaned = super().clean()
        zip_in_state_check(self, zip_field="zip_code")
        return cleaned


class ConsentForm(forms.Form):
    setup_intent = forms.CharField(max_length=100)
    agree = forms.BooleanField(
        label="I agree to these terms and authorise these charges to my card.",
        error_messages={"required": "Please tick the box to agree to the terms."},
    )


class NewDateForm(forms.Form):
    new_date = forms.DateField(label="New date", widget=forms.DateInput(attrs={"type": "date"}))
