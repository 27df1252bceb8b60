"""Staff edit the catalog here; prices are the sensitive part.

Every figure a tier row shows (per pill, list price, savings, best per pill) comes from
``catalog.pricing``, the module the storefront uses, so what staff see is what customers see.
Price edits are saved model by model, never with ``QuerySet.update``, so simple-history keeps
an audit trail with the acting user.
"""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from import_export.admin import ImportExportModelAdmin
from import_export.formats import base_formats

from pharmacy.admin_history import object_missing_redirect

from .forms import (
    BulkPriceChangeForm,
    DosageForm,
    PackageTierForm,
    PackageTierInlineFormSet,
    ParentCachingInlineFormSet,
    PriceImportForm,
    annotate_tier_figures,
)
from .models import (
    FAQ,
    Category,
    Dosage,
    DosingGuideline,
    InfoSection,
    PackageTier,
    Product,
    SafetyNote,
)
from .price_history import product_price_changes
from .resources import PackageTierPriceResource
from .services import (
    PriceChangeRefused,
    dosage_price_warnings,
    format_money,
    tiers_bulk_change_prices,
    tiers_price_change_preview,
)

# --- Read-only price figures shared by the tier inline and the tier changelist ----------------


class TierFiguresMixin:
    """Columns read from ``tier.admin_figures``, set in bulk by ``annotate_tier_figures``."""

    @admin.display(description="Per pill")
    def per_pill(self, obj):
        figures = getattr(obj, "admin_figures", None)
        return format_money(figures.per_pill) if figures else "—"

    @admin.display(description="List price")
    def list_price(self, obj):
        figures = getattr(obj, "admin_figures", None)
        return format_money(figures.list_price) if figures else "—"

    @admin.display(description="Savings")
    def savings(self, obj):
        figures = getattr(obj, "admin_figures", None)
        if not figures:
            return "—"
        if figures.price.amount > figures.list_price.amount:
            return render_to_string("admin/catalog/_no_saving.html")
        return f"{figures.savings_percent}%"

    @admin.display(description="Best per pill")
    def best_per_pill(self, obj):
        figures = getattr(obj, "admin_figures", None)
        return "★ Best per pill" if figures and figures.best_per_pill else ""

    @admin.display(description="Lowest 30 days")
    def lowest_30_days(self, obj):
        return format_money(getattr(obj, "admin_lowest_30", None))


def _warn_once(request, text: str) -> None:
    shown = request.__dict__.setdefault("_price_warnings_shown", set())
    if text not in shown:
        shown.add(text)
        messages.warning(request, text)


# --- Bulk price change (tiers and products) ---------------------------------------------------


def preview_key(mode: str, value) -> str:
    """What the preview showed; the confirm button carries it back so stale confirms are caught."""
    return f"{mode}:{value.quantize(Decimal('0.01'))}"


def _bulk_change_prices(modeladmin, request, tiers, *, scope: str):
    """The intermediate page of both bulk actions: form, preview table, confirm.

    Returns None (back to the changelist) once the change is applied.
    """
    tiers = list(
        tiers.select_related("dosage__product").order_by(
            "dosage__product__name", "dosage", "quantity"
        )
    )
    submitted = "_preview" in request.POST or "_confirm" in request.POST
    form = BulkPriceChangeForm(request.POST if submitted else None)
    rows = None
    previewed = ""
    if submitted and form.is_valid():
        mode, value = form.cleaned_data["mode"], form.cleaned_data["value"]
        previewed = preview_key(mode, value)
        if "_confirm" in request.POST and request.POST.get("previewed") != previewed:
            # The figures were edited after the preview: show the new preview, apply nothing.
            messages.warning(
                request,
                "The change was edited after the preview; check the new figures and confirm again.",
            )
        elif "_confirm" in request.POST:
            try:
                changed = tiers_bulk_change_prices(
                    tier_ids=[t.pk for t in tiers], mode=mode, value=value, user=request.user
                )
            except PriceChangeRefused as refused:
                messages.error(request, str(refused))
            else:
                modeladmin.message_user(
                    request, f"Changed the price of {len(changed)} pack(s).", messages.SUCCESS
                )
                warned_dosages = {row.tier.dosage_id: row.tier.dosage for row in changed}
                for dosage in warned_dosages.values():
                    for warning in dosage_price_warnings(dosage=dosage):
                        _warn_once(request, warning)
                return None
        rows = tiers_price_change_preview(tiers=tiers, mode=mode, value=value)
    refused = [row for row in rows or [] if row.refused]
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": "Change prices",
        "opts": modeladmin.model._meta,
        "scope": scope,
        "form": form,
        "rows": [
            {
                "label": row.label,
                "old_price": format_money(row.old_price),
                "new_price": format_money(row.new_price),
                "old_per_pill": format_money(row.old_per_pill),
                "new_per_pill": format_money(row.new_per_pill),
                "refused": row.refused,
            }
            for row in rows
        ]
        if rows is not None
        else None,
        "refused": refused,
        "tier_count": len(tiers),
        "previewed": previewed,
        "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
        "action": request.POST.get("action", ""),
        "select_across": request.POST.get("select_across", "0"),
    }
    return TemplateResponse(request, "admin/catalog/bulk_change_prices.html", context)


# --- Product and its children -----------------------------------------------------------------


class LabelledRowsMixin:
    """A tabular inline's boxes sit under column headings, with no <label> of their own: name each
    box after its column (aria-label), so screen readers and voice control can find it."""

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)

        class LabelledFormSet(formset):
            def add_fields(self, form, index):
                super().add_fields(form, index)  # after the formset's own boxes (Delete) are added
                for field in form.fields.values():
                    widget = getattr(
                        field.widget, "widget", field.widget
                    )  # a related-field wrapper
                    target = (
                        widget.widgets[0] if getattr(widget, "widgets", None) else widget
                    )  # money: the amount
                    target.attrs.setdefault("aria-label", str(field.label))

        LabelledFormSet.__name__ = formset.__name__
        return LabelledFormSet


class DosageInline(LabelledRowsMixin, admin.TabularInline):
    model = Dosage
    form = DosageForm
    formset = ParentCachingInlineFormSet
    fields = ("strength", "strength_value", "strength_unit", "list_price_per_pill")
    extra = 0
    show_change_link = True


class InfoSectionInline(admin.StackedInline):
    model = InfoSection
    extra = 0


class DosingGuidelineInline(admin.TabularInline):
    model = DosingGuideline
    extra = 0


class SafetyNoteInline(admin.TabularInline):
    model = SafetyNote
    extra = 0


class FAQInline(admin.StackedInline):
    model = FAQ
    extra = 0


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "position")
    prepopulated_fields = {"slug": ("name",)}
    search_fields = ("name",)


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "active_ingredient",
        "category",
        "legal_class",
        "is_published",
        "is_featured",
    )
    list_filter = ("category", "legal_class", "is_published")
    list_select_related = ("category",)
    search_fields = ("name", "active_ingredient", "brand_names", "indications")
    prepopulated_fields = {"slug": ("name",)}
    inlines = (DosageInline, InfoSectionInline, DosingGuidelineInline, SafetyNoteInline, FAQInline)
    actions = ("change_prices",)
    change_form_template = "admin/catalog/product/change_form.html"

    def get_urls(self):
        urls = [
            path(
                "<path:object_id>/price-history/",
                self.admin_site.admin_view(self.price_history_view),
                name="catalog_product_price_history",
            ),
        ]
        return urls + super().get_urls()

    @admin.action(
        description="Change prices of all packs of the selected products", permissions=["change"]
    )
    def change_prices(self, request, queryset):
        tiers = PackageTier.objects.filter(dosage__product__in=queryset)
        return _bulk_change_prices(self, request, tiers, scope="products")

    def price_history_view(self, request, object_id):
        product = self.get_object(request, unquote(object_id))
        if product is None:
            return object_missing_redirect(self, request, object_id)
        if not self.has_view_or_change_permission(request, product):
            raise PermissionDenied
        changes = product_price_changes(product=product)
        rows = [
            {
                "when": c.when,
                "who": c.who,
                "subject": c.subject,
                "field": c.field,
                "old": _display_value(c.old),
                "new": _display_value(c.new),
                "kind": c.kind,
            }
            for c in changes
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": f"Price history: {product}",
            "subtitle": None,
            "opts": self.opts,
            "original": product,
            "rows": rows,
            "has_view_permission": True,
        }
        return TemplateResponse(request, "admin/catalog/product/price_history.html", context)


def _display_value(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "active" if value else "inactive"
    if hasattr(value, "amount") and hasattr(value, "currency"):
        return format_money(value)
    return str(value)


# --- Dosage and its tiers ---------------------------------------------------------------------


PRICE_CSS = forms.Media(css={"all": ["catalog/admin-prices.css"]})


class PackageTierInline(LabelledRowsMixin, TierFiguresMixin, admin.TabularInline):
    model = PackageTier
    form = PackageTierForm
    formset = PackageTierInlineFormSet
    fields = (
        "quantity",
        "price",
        "sku",
        "is_active",
        "position",
        "stock",
        "per_pill",
        "list_price",
        "savings",
        "best_per_pill",
        "lowest_30_days",
    )
    readonly_fields = ("per_pill", "list_price", "savings", "best_per_pill", "lowest_30_days")
    extra = 0


@admin.register(Dosage)
class DosageAdmin(admin.ModelAdmin):
    form = DosageForm
    list_display = ("__str__", "strength", "list_price_per_pill")
    list_select_related = ("product",)
    search_fields = ("product__name", "product__active_ingredient", "strength")
    list_filter = ("product__category",)
    fields = ("product", "strength", "strength_value", "strength_unit", "list_price_per_pill")
    autocomplete_fields = ("product",)
    inlines = (PackageTierInline,)

    @property
    def media(self):
        return super().media + PRICE_CSS

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("product")

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        for warning in dosage_price_warnings(dosage=form.instance):
            _warn_once(request, warning)


# --- The tier changelist: every pack, prices editable in the list ------------------------------


class TierChangeList(ChangeList):
    def get_results(self, request):
        super().get_results(request)
        tiers = list(self.result_list)
        dosage_ids = {t.dosage_id for t in tiers}
        siblings: dict[int, list[PackageTier]] = {}
        for sibling in (
            PackageTier.objects.filter(dosage_id__in=dosage_ids)
            .only("id", "dosage_id", "quantity", "price", "price_currency", "is_active")
            .order_by()
        ):
            siblings.setdefault(sibling.dosage_id, []).append(sibling)
        annotate_tier_figures(tiers, all_tiers=siblings)


@admin.register(PackageTier)
class PackageTierAdmin(TierFiguresMixin, ImportExportModelAdmin):
    resource_classes = (PackageTierPriceResource,)
    formats = (base_formats.CSV,)
    import_form_class = PriceImportForm
    form = PackageTierForm
    list_display = (
        "sku",
        "product_name",
        "strength",
        "quantity",
        "price",
        "is_active",
        "per_pill",
        "list_price",
        "savings",
        "best_per_pill",
        "lowest_30_days",
    )
    list_display_links = ("sku",)
    list_editable = ("price", "is_active")
    list_select_related = ("dosage__product",)
    list_filter = ("dosage__product__category", "dosage__product__legal_class", "is_active")
    search_fields = ("sku", "dosage__product__name", "dosage__product__active_ingredient")
    search_help_text = "Search by product, active ingredient or SKU."
    ordering = ("dosage__product__name", "dosage__strength_micrograms", "quantity")
    fields = ("dosage", "quantity", "price", "sku", "is_active", "position", "stock")
    autocomplete_fields = ("dosage",)
    actions = ("change_prices",)
    list_per_page = 100

    @property
    def media(self):
        return super().media + PRICE_CSS

    def get_changelist(self, request, **kwargs):
        return TierChangeList

    def get_changelist_form(self, request, **kwargs):
        # The list-editable price gets the same validation as the change form.
        kwargs.setdefault("form", PackageTierForm)
        return super().get_changelist_form(request, **kwargs)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("dosage__product")

    @admin.display(description="Product", ordering="dosage__product__name")
    def product_name(self, obj):
        return obj.dosage.product.name

    @admin.display(description="Strength", ordering="dosage__strength_micrograms")
    def strength(self, obj):
        return obj.dosage.strength

    @admin.action(description="Change prices of the selected packs", permissions=["change"])
    def change_prices(self, request, queryset):
        return _bulk_change_prices(self, request, queryset, scope="packs")

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if {"price", "is_active", "quantity"} & set(form.changed_data):
            for warning in dosage_price_warnings(dosage=obj.dosage):
                _warn_once(request, warning)

    # Import and export: importing changes prices, so it needs the change permission.
    def has_import_permission(self, request):
        return request.user.has_perm("catalog.change_packagetier")

    def has_export_permission(self, request):
        return request.user.has_perm("catalog.view_packagetier")

    def get_import_data_kwargs(self, **kwargs):
        kwargs = super().get_import_data_kwargs(**kwargs)
        # The confirm step must also be all-or-nothing, even if the data changed since the preview.
        kwargs["rollback_on_validation_errors"] = True
        return kwargs

    def process_result(self, result, request):
        if result.has_errors() or result.has_validation_errors():
            rows = sorted(
                {row.number for row in result.invalid_rows} | {n for n, _ in result.row_errors()}
            )
            messages.error(
                request,
                "Nothing was imported: the file has errors"
                + (f" on row(s) {', '.join(map(str, rows))}" if rows else "")
                + ". Fix them and upload the file again.",
            )
            return HttpResponseRedirect(reverse("admin:catalog_packagetier_import"))
        return super().process_result(result, request)
