import copy

from django import forms
from django.conf import settings
from django.forms.renderers import get_default_renderer
from django.utils.translation import get_language

from orders.models import ShippingMethod
from orders.services import ShippingAddress
from pharmacy.us_address import STATE_NAMES, US_STATES, ZipCodeField, zip_in_state_check


class FixedSelect(forms.Select):
    """The select of a ``FixedChoiceField``: its choices are shared by every form's copy (Django's
    ``ChoiceWidget`` copies and re-normalises them per form), and its HTML is kept per value,
    attributes, renderer and language, since nothing else changes it (the checkout's ~60 states
    were escaped into ``<option>``s on every request). Only values among the choices are kept,
    and at most ``MAX_KEPT`` answers, so posted junk cannot grow it."""

    MAX_KEPT = 512

    def __init__(self, attrs=None, choices=()):
        super().__init__(attrs, choices)
        self._kept: dict[tuple, str] = {}  # shared with every copy

    def __deepcopy__(self, memo):
        # ``Widget.__deepcopy__`` without ``ChoiceWidget``'s copy of the choices.
        obj = copy.copy(self)
        obj.attrs = self.attrs.copy()
        memo[id(self)] = obj
        return obj

    def render(self, name, value, attrs=None, renderer=None):
        values = tuple(self.format_value(value))
        try:
            key = (
                name,
                values,
                tuple(self.attrs.items()),
                tuple((attrs or {}).items()),
                type(renderer or get_default_renderer()),
                get_language(),
            )
            hash(key)
        except TypeError:  # an attribute that cannot be a key: rendered each time
            return super().render(name, value, attrs, renderer)
        html = self._kept.get(key)
        if html is None:
            html = super().render(name, value, attrs, renderer)
            known = {str(choice) for choice, _label in self.choices}
            if set(values) <= known:
                if len(self._kept) >= self.MAX_KEPT:
                    del self._kept[next(iter(self._kept))]
                self._kept[key] = html
        return html


class FixedChoiceField(forms.ChoiceField):
    """A choice field whose choices never change: each form shares them instead of deep-copying
    them (Django copies a field's choices for every form instance: ~60 states on every checkout)."""

    widget = FixedSelect

    def __deepcopy__(self, memo):
        # ``Field.__deepcopy__`` (skipping ``ChoiceField``'s): a shallow copy sharing ``_choices``;
        # the widget (a ``FixedSelect``) shares them too.
        return forms.Field.__deepcopy__(self, memo)


def shipping_address(data: dict) -> ShippingAddress:
    """The address of a valid ``CheckoutForm`` (or a form with its address fields)."""
    return ShippingAddress(
        name=data["name"],
        line1=data["line1"],
        line2=data["line2"],
        city=data["city"],
        state=data["state"],
        zip_code=data["zip_code"],
    )


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
        label="Shipping",
        choices=ShippingMethod.choices,
        initial=ShippingMethod.STANDARD,
        widget=forms.RadioSelect,
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
            # Screen readers announce the error paragraph under each field (templates/jinja2/checkout/_field.html).
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

    def clean(self):
        """The ZIP code must lie in the state: the licence check and the sales tax go by the state."""
        cleaned = super().clean()
        zip_in_state_check(self, zip_field="zip_code")
        return cleaned
