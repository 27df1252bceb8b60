"""CSV export and import of tier prices (django-import-export), keyed by SKU.

Only ``price`` and ``is_active`` are imported; product, strength and quantity travel with the
file so a person can read it, but are ignored on the way back in. The import never creates
tiers: an unknown SKU is an error, as is a bad number or a SKU listed twice. Any error rolls
the whole file back (the admin passes ``rollback_on_validation_errors``).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from djmoney.money import Money
from import_export import fields, resources, widgets
from import_export.instance_loaders import CachedInstanceLoader

from .models import PackageTier


class MoneyAmountWidget(widgets.Widget):
    """A price as a plain number ("68.23") in the file, a Money in the model."""

    def clean(self, value, row=None, **kwargs):
        text = "" if value is None else str(value).strip().removeprefix("$").strip()
        if not text:
            raise ValueError("A price is required.")
        try:
            amount = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"“{value}” is not a number; write prices like 68.23.") from None
        if not amount.is_finite():
            raise ValueError(f"“{value}” is not a number; write prices like 68.23.")
        if amount <= 0:
            raise ValueError(f"The price must be more than zero (got {value}).")
        if amount != amount.quantize(Decimal("0.01")):
            raise ValueError(f"“{value}” has more than two decimal places.")
        return Money(amount, "USD")

    def render(self, value, obj=None, **kwargs):
        return "" if value is None else f"{value.amount:.2f}"


class StrictBooleanWidget(widgets.BooleanWidget):
    TRUE = {"1", "true", "yes", "y"}
    FALSE = {"0", "false", "no", "n"}

    def clean(self, value, row=None, **kwargs):
        text = "" if value is None else str(value).strip().lower()
        if text in self.TRUE:
            return True
        if text in self.FALSE:
            return False
        raise ValueError(f"“{value}” is not yes/no; write 1 or 0.")


class PackageTierPriceResource(resources.ModelResource):
    sku = fields.Field(attribute="sku", column_name="sku")
    product = fields.Field(attribute="dosage__product__name", column_name="product", readonly=True)
    strength = fields.Field(attribute="dosage__strength", column_name="strength", readonly=True)
    quantity = fields.Field(attribute="quantity", column_name="quantity", readonly=True)
    price = fields.Field(attribute="price", column_name="price", widget=MoneyAmountWidget())
    is_active = fields.Field(
        attribute="is_active", column_name="is_active", widget=StrictBooleanWidget()
    )

    class Meta:
        model = PackageTier
        fields = ("sku", "product", "strength", "quantity", "price", "is_active")
        export_order = fields
        import_id_fields = ("sku",)
        skip_unchanged = True
        report_skipped = True
        clean_model_instances = True
        use_transactions = True
        # All the file's SKUs in one query instead of one per row.
        instance_loader_class = CachedInstanceLoader

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._seen_skus: dict[str, int] = {}
        self._user = None
        self._row_number = None

    def get_queryset(self):
        return PackageTier.objects.select_related("dosage__product")

    def before_import(self, dataset, **kwargs):
        self._seen_skus = {}
        self._user = kwargs.get("user")
        missing = {"sku", "price", "is_active"} - set(dataset.headers or [])
        if missing:
            raise ValidationError(f"The file has no {', '.join(sorted(missing))} column.")

    def before_import_row(self, row, **kwargs):
        number = kwargs.get("row_number")
        sku = str(row.get("sku") or "").strip()
        row["sku"] = sku
        if not sku:
            raise ValidationError({"sku": f"Row {number}: the SKU is empty."})
        if sku in self._seen_skus:
            raise ValidationError(
                {
                    "sku": f"Row {number}: SKU {sku} appears again (first on row {self._seen_skus[sku]})."
                }
            )
        self._seen_skus[sku] = number

    def import_row(self, row, instance_loader, **kwargs):
        self._row_number = kwargs.get("row_number")
        return super().import_row(row, instance_loader, **kwargs)

    def get_or_init_instance(self, instance_loader, row):
        instance = self.get_instance(instance_loader, row)
        if instance is None:
            raise ValidationError(
                {
                    "sku": f"Row {self._row_number}: unknown SKU {row.get('sku')}; imports never add packs."
                }
            )
        return instance, False

    def import_instance(self, instance, row, **kwargs):
        """Name the row in every cell error, so staff can find it in their spreadsheet."""
        try:
            super().import_instance(instance, row, **kwargs)
        except ValidationError as error:
            raise ValidationError(
                {
                    field: [f"Row {kwargs.get('row_number')}: {message}" for message in messages]
                    for field, messages in error.message_dict.items()
                }
            ) from None

    def before_save_instance(self, instance, row, **kwargs):
        # The admin's HistoryRequestMiddleware knows the user too; this covers imports run
        # from a shell or a task, where there is no request.
        if self._user is not None and getattr(self._user, "pk", None):
            instance._history_user = self._user
