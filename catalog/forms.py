"""Admin forms for prices: clear messages instead of database errors."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet
from djmoney.forms.widgets import MoneyWidget
from import_export.forms import ImportForm

from . import pricing
from .models import Dosage, PackageTier
from .price_history import tiers_lowest_prices
from .services import PriceChangeMode


def single_currency_widget(field, *, step: str) -> None:
    """The shop sells in one currency: show an amount box, not a currency drop-down per row."""
    currencies = getattr(settings, "CURRENCIES", ())
    if field is None or len(currencies) != 1:
        return
    field.widget = MoneyWidget(
        amount_widget=forms.NumberInput(attrs={"step": step}),
        currency_widget=forms.HiddenInput(),
        default_currency=currencies[0],
    )


class DosageForm(forms.ModelForm):
    class Meta:
        model = Dosage
        fields = ("product", "strength", "strength_value", "strength_unit", "list_price_per_pill")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        single_currency_widget(self.fields.get("list_price_per_pill"), step="0.00001")


class PackageTierForm(forms.ModelForm):
    class Meta:
        model = PackageTier
        fields = ("quantity", "price", "sku", "is_active", "position", "stock")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        single_currency_widget(self.fields.get("price"), step="0.01")

    def clean_price(self):
        price = self.cleaned_data.get("price")
        if price is not None and price.amount <= 0:
            raise ValidationError("The price must be more than zero.", code="not_positive")
        return price

    def clean_quantity(self):
        quantity = self.cleaned_data.get("quantity")
        if quantity is not None and quantity <= 0:
            raise ValidationError("A pack holds at least one pill.", code="not_positive")
        return quantity


class ParentCachingInlineFormSet(BaseInlineFormSet):
    """Give each row its parent object, so the rows' ``__str__`` costs no query per row."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for form in self.forms:
            setattr(form.instance, self.fk.name, self.instance)


class PackageTierInlineFormSet(ParentCachingInlineFormSet):
    """A dosage's tiers: no pack size twice, and each row carries its computed figures.

    The figures (per pill, list price, savings, best per pill, lowest 30-day price) are
    computed once for the whole dosage here, so the read-only columns cost no queries.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        existing = [form.instance for form in self.forms if form.instance.pk]
        annotate_tier_figures(existing, dosage=self.instance)

    def clean(self):
        # Before Django's own unique check, whose "Please correct the duplicate data" says less.
        seen: dict[int, int] = {}
        for number, form in enumerate(self.forms, start=1):
            if not hasattr(form, "cleaned_data") or not form.cleaned_data:
                continue
            if self.can_delete and self._should_delete_form(form):
                continue
            quantity = form.cleaned_data.get("quantity")
            if quantity is None:
                continue
            if quantity in seen:
                message = (
                    f"There are two {quantity}-pill packs (rows {seen[quantity]} and {number}); "
                    "each pack size may appear only once per dosage."
                )
                form.add_error("quantity", message)
                raise ValidationError(message, code="duplicate_quantity")
            seen[quantity] = number
        super().clean()


def annotate_tier_figures(
    tiers: list[PackageTier], *, dosage=None, all_tiers: dict | None = None
) -> None:
    """Attach ``admin_figures`` (a ``pricing.TierPrice``) and ``admin_lowest_30`` to tiers.

    ``all_tiers`` maps dosage id -> that dosage's tiers, so "best per pill" is judged among all
    of a dosage's active tiers, not just the ones on screen; when absent the tiers given (plus
    ``dosage``) are taken as the whole dosage.
    """
    if not tiers:
        return
    if all_tiers is None:
        all_tiers = {}
        for tier in tiers:
            all_tiers.setdefault(tier.dosage_id, []).append(tier)
    lowest = tiers_lowest_prices(tiers=tiers)
    best_by_dosage: dict[int, int | None] = {}
    for dosage_id, dosage_tiers in all_tiers.items():
        active = [t for t in dosage_tiers if t.is_active]
        index = pricing.best_per_pill_index([(t.quantity, t.price) for t in active])
        best_by_dosage[dosage_id] = active[index].pk if index is not None else None
    for tier in tiers:
        tier_dosage = dosage if dosage is not None else tier.dosage
        tier.admin_figures = pricing.tier_price(
            quantity=tier.quantity,
            price=tier.price,
            list_price_per_pill=tier_dosage.list_price_per_pill,
            best=best_by_dosage.get(tier.dosage_id) == tier.pk,
        )
        tier.admin_lowest_30 = lowest.get(tier.pk)


class BulkPriceChangeForm(forms.Form):
    mode = forms.ChoiceField(
        label="Change prices", choices=PriceChangeMode.CHOICES, widget=forms.RadioSelect
    )
    value = forms.DecimalField(
        label="By",
        max_digits=10,
        decimal_places=2,
        help_text="Percent for a percentage change (e.g. 5 or -10), dollars for a fixed amount (e.g. 2.50 or -1).",
    )

    def clean_value(self):
        value: Decimal = self.cleaned_data["value"]
        if value == 0:
            raise ValidationError("Enter a change other than zero.", code="zero")
        return value

    def clean(self):
        cleaned = super().clean()
        value = cleaned.get("value")
        if cleaned.get("mode") == PriceChangeMode.PERCENT and value is not None and value <= -100:
            self.add_error("value", "A cut of 100% or more would make prices zero or less.")
        return cleaned


class PriceImportForm(ImportForm):
    """django-import-export's upload form, refusing a file with a NUL byte before it is read.

    A CSV of prices never holds one (a UTF-16 export or a binary file does), and PostgreSQL cannot
    compare text holding it: without this check the preview failed with a server error.
    """

    def clean_import_file(self):
        upload = self.cleaned_data["import_file"]
        line = 1
        for chunk in upload.chunks():
            position = chunk.find(b"\x00")
            if position >= 0:
                line += chunk.count(b"\n", 0, position)
                raise ValidationError(
                    f"The file has a NUL character (a zero byte) on line {line}. Save the sheet again "
                    "as “CSV UTF-8” and upload that file.",
                    code="nul",
                )
            line += chunk.count(b"\n")
        upload.seek(0)
        return upload
