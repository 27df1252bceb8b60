"""orders.forms.FixedSelect: the state list's HTML kept, identical to a plain select's (issue #17)."""

from django import forms
from django.conf import settings
from django.forms.renderers import DjangoTemplates

from checkout.forms import CheckoutForm, FixedSelect
from pharmacy.us_address import US_STATES

CHOICES = [("", "Choose a state")] + US_STATES


def plain_state_html(data=None, renderer=None) -> str:
    """The same form's state field through Django's own Select."""
    form = CheckoutForm(data, renderer=renderer)
    field = form.fields["state"]
    plain = forms.Select(choices=CHOICES)
    plain.attrs = field.widget.attrs.copy()
    field.widget = plain
    return str(form["state"])


def test_same_html_as_a_plain_select_for_every_case():
    cases = [
        None,
        {"state": ""},
        {"state": settings.PHARMACY_LICENSED_STATES[0]},
        {"state": "ZZ"},
        {"state": "CA"},
    ]
    for renderer in (None, DjangoTemplates()):
        for data in cases * 2:  # the second time from what was kept
            form = CheckoutForm(data, renderer=renderer)
            assert isinstance(form.fields["state"].widget, FixedSelect)
            assert str(form["state"]) == plain_state_html(data, renderer)


def test_invalid_marked_and_selected_per_form():
    invalid = str(CheckoutForm({"state": "ZZ"})["state"])
    assert 'aria-invalid="true"' in invalid and " selected" not in invalid
    chosen = str(CheckoutForm({"state": "NY"})["state"])
    assert '<option value="NY" selected>' in chosen
    assert '<option value="NY" selected>' not in str(CheckoutForm()["state"])


def test_posted_junk_is_not_kept_and_choices_are_shared():
    widget = CheckoutForm().fields["state"].widget
    for junk in ("ZZ", "<b>", "x" * 50):
        str(CheckoutForm({"state": junk})["state"])
    assert all(set(key[1]) <= {choice for choice, _ in CHOICES} for key in widget._kept)
    assert CheckoutForm().fields["state"].widget.choices is widget.choices
    assert CheckoutForm().fields["state"].widget.attrs is not widget.attrs
