"""The fast widget renderer writes exactly what Django's widget templates write (issue #17).

``pharmacy.form_renderer.FastWidgetRenderer`` (``FORM_RENDERER``) writes inputs, selects,
textareas and radio/checkbox choices in Python to save the checkout page's ~190 template
includes. A browser, a screen reader and the checkout's JavaScript see the same markup only if
every attribute, escape and line break is the same: each widget the shop's forms use (and the
awkward cases: optgroups, booleans, values needing escapes, safe strings) is rendered with both
renderers and compared byte for byte.
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from django import forms
from django.conf import settings
from django.forms.renderers import DjangoTemplates, get_default_renderer
from django.utils.safestring import mark_safe

from orders.forms import CheckoutForm
from orders.prescription_forms import PrescriptionCheckoutForm
from pharmacy.form_renderer import FastWidgetRenderer

REFERENCE = DjangoTemplates()


class AwkwardForm(forms.Form):
    grouped = forms.ChoiceField(
        choices=[("", "Pick"), ("Fruit", [("a&b", "Apples & <pears>"), ("c", "Cherries")]), ("d", 'Dates "quoted"')],
        initial="c",
    )
    many = forms.MultipleChoiceField(choices=[("1", "One"), ("2", "Two"), ("3", "Three")], initial=["1", "3"])
    boxes = forms.MultipleChoiceField(
        choices=[("x", "X <b>"), ("y", "Y")], widget=forms.CheckboxSelectMultiple, initial=["y"], required=False
    )
    radio = forms.ChoiceField(choices=[(1, "First"), (2, "Second")], widget=forms.RadioSelect, initial=2)
    agree = forms.BooleanField(required=False, initial=True)
    count = forms.IntegerField(initial=1000, widget=forms.NumberInput(attrs={"min": 0, "step": 1, "disabled": True}))
    when = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"), required=False)
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2, "hidden": False}), initial='<script>"x"</script>')
    secret = forms.CharField(widget=forms.PasswordInput(render_value=True), initial="p&ss")
    token = forms.CharField(widget=forms.HiddenInput, initial=mark_safe("already <safe>"))
    site = forms.URLField(initial="https://example.com/?a=1&b=2", assume_scheme="https")
    upload = forms.FileField(required=False)  # not on the fast path: rendered by Django's templates


def _html(form_factory, renderer) -> list[str]:
    """Every field's widget, and each radio/checkbox choice's ``tag()``, as the page renders them."""
    form = form_factory(renderer)
    out = []
    for field in form:
        out.append(str(field))
        if isinstance(field.field.widget, (forms.RadioSelect, forms.CheckboxSelectMultiple)):
            out.extend(str(choice.tag()) for choice in field)
            out.extend(str(choice) for choice in field)
    return out


RX_LINES = [SimpleNamespace(tier_id=7, requires_prescription=True, product_name="Baclofen", strength="10 mg",
                            pack_size=30)]
FORMS = {
    "checkout, empty": lambda r: CheckoutForm(initial={"email": "a@example.com", "name": "Ann O'Neil"}, renderer=r),
    "checkout, with errors": lambda r: CheckoutForm(
        {"email": "not an email", "name": "<Bob>", "state": "ZZ", "zip_code": "1", "shipping_method": "express"},
        renderer=r,
    ),
    "checkout, valid": lambda r: CheckoutForm(
        {"email": "c@example.com", "name": "C", "line1": "1 Main St", "city": "Albany",
         "state": settings.PHARMACY_LICENSED_STATES[0], "zip_code": "12207", "shipping_method": "standard"},
        renderer=r,
    ),
    "prescription step": lambda r: PrescriptionCheckoutForm(lines=RX_LINES, renderer=r),
    "prescription step, posted": lambda r: PrescriptionCheckoutForm(
        {"patient_name": "P & Q", "date_of_birth": "1980-02-30", "allergies": "none\n<b>", "rx_7_method": "prescriber"},
        lines=RX_LINES, renderer=r,
    ),
    "awkward widgets": lambda r: AwkwardForm(renderer=r),
    "awkward widgets, posted": lambda r: AwkwardForm({"grouped": "a&b", "many": ["2"], "radio": "1", "count": "x"},
                                                     renderer=r),
}


@pytest.mark.parametrize("name", FORMS)
def test_fast_renderer_writes_the_same_html_as_djangos_templates(name):
    expected = _html(FORMS[name], REFERENCE)
    assert _html(FORMS[name], FastWidgetRenderer()) == expected
    assert any("<input" in html or "<select" in html for html in expected)


class _NoTemplates(FastWidgetRenderer):
    def get_template(self, template_name):
        raise AssertionError(f"template used: {template_name}")


def test_checkout_fields_are_written_without_any_template():
    """The point of the renderer: the checkout's inputs and state list load no template at all."""
    form = CheckoutForm(renderer=_NoTemplates())
    state = str(form["state"])
    assert state.count("<option") == len(form.fields["state"].choices)
    for name in ("email", "name", "line1", "line2", "city", "zip_code"):
        assert str(form[name]).startswith("<input")


def test_the_site_uses_the_fast_renderer():
    assert isinstance(get_default_renderer(), FastWidgetRenderer)
