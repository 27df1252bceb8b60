from django.contrib import admin

from pharmacy.admin_history import HistoryAdmin

from .models import DiscountCode, DiscountRedemption


class DiscountRedemptionInline(admin.TabularInline):
    model = DiscountRedemption
    extra = 0
    can_delete = False
    fields = ("order_number", "email", "amount", "created_at", "released_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(DiscountCode)
class DiscountCodeAdmin(HistoryAdmin):
    """Codes and their rules; uses are counted when a card is authorised, given back on cancel."""

    list_display = (
        "code",
        "kind",
        "value",
        "min_subtotal",
        "starts_at",
        "ends_at",
        "uses",
        "max_uses",
        "is_active",
    )
    list_filter = ("is_active", "kind")
    search_fields = ("code", "description")
    filter_horizontal = ("products",)
    inlines = (DiscountRedemptionInline,)
    fieldsets = (
        (None, {"fields": ("code", "description", "is_active")}),
        ("What it gives", {"fields": ("kind", "value", "min_subtotal")}),
        (
            "When and how often",
            {"fields": ("starts_at", "ends_at", "max_uses", "max_uses_per_email")},
        ),
        (
            "What it applies to",
            {
                "fields": (
                    "applies_to_general_sale",
                    "applies_to_pharmacy",
                    "applies_to_prescription",
                    "products",
                )
            },
        ),
    )

    def get_queryset(self, request):
        from .services import discount_codes_with_uses

        return discount_codes_with_uses()

    @admin.display(description="uses", ordering="uses")
    def uses(self, obj):
        return obj.uses
