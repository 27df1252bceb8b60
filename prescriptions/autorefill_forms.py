"""Forms of the auto-refill pages: the opt-in (pack and address), the consent, a new date."""

from __future__ import annotations

from django import forms

from orders.forms import CheckoutForm


class AutoRefillForm(CheckoutForm):
    """The pack and where it goes; the address rules of the checkout (licensed state, ZIP)."""

    tier_id = forms.TypedChoiceField(label="Pack", coerce=int, widget=forms.RadioSelect)

    def __init__(self, *args, packs=(), **kwargs):
        super().__init__(*args, **kwargs)
        del self.fields["email"]  # the account's email address
        self.fields["tier_id"].choices = [
            (tier.pk, f"{tier.quantity} pills") for tier in packs
        ]
        self.order_fields(["tier_id"])


class ConsentForm(forms.Form):
    setup_intent = forms.CharField(max_length=100)
    agree = forms.BooleanField(
        label="I agree to these terms and authorise these charges to my card.",
        error_messages={"required": "Please tick the box to agree to the terms."},
    )


class NewDateForm(forms.Form):
    new_date = forms.DateField(label="New date", widget=forms.DateInput(attrs={"type": "date"}))
