from django import forms
from django.conf import settings

from pharmacy.us_address import STATE_NAMES, US_STATES, ZipCodeField

from .models import ShippingMethod



class FixedChoiceField(forms.ChoiceField):
    """A choice field whose choices never change: each form shares them instead of deep-copying
    them (Django copies a field's choices for every form instance: ~60 states on every checkout)."""

    def __deepcopy__(self, memo):
        # ``Field.__deepcopy__`` (skipping ``ChoiceField``'s): a shallow copy sharing ``_choices``;
        # the widget still gets its own shallow copy of the list.
        return forms.Field.__deepcopy__(self, memo)


class CheckoutForm(forms.Form):
    """Contact and US shipping address. Deliberately has no price or total field: the order is
    priced from the catalog, so anything else posted is ignored."""

    email = forms.EmailField(label="Email", help_text="For your receipt and order updates.")
    name = forms.CharField(label="Full name", max_length=150)
    line1 = forms.CharField(label="Address line 1", max_length=200)
    line2 = forms.CharField(label="Address line 2 (optional)", max_length=200, required=False)
    city = forms.CharField(label="City", max_length=100)
    state = FixedChoiceField(label="State", choices=[("", "Choose a state")] + US_STATES)
    zip_code = ZipCodeField(
        label="ZIP code",
        max_length=10,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "postal-code"}),
    )
    shipping_method = forms.ChoiceField(
        label="Shipping", choices=ShippingMethod.choices, initial=ShippingMethod.STANDARD, widget=forms.RadioSelect
    )

    autocomplete = {
        "email": "email",
        "name": "name",
        "line1": "address-line1",
        "line2": "address-line2",
        "city": "address-level2",
        "state": "address-level1",
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, value in self.autocomplete.items():
            self.fields[name].widget.attrs["autocomplete"] = value
        for name, field in self.fields.items():
            # Screen readers announce the error paragraph under each field (templates/orders/_field.html).
            field.widget.attrs["aria-describedby"] = f"error-{name}"
            if self.is_bound and name in self.errors:
                field.widget.attrs["aria-invalid"] = "true"

    def clean_state(self):
        state = self.cleaned_data["state"]
        if state not in settings.PHARMACY_LICENSED_STATES:
            raise forms.ValidationError(
                f"We are not licensed to ship medicines to {STATE_NAMES.get(state, state)}. "
                "We can only deliver to states where our pharmacy holds a licence."
            )
        return state
