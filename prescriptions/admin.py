"""Admin pages for prescriptions on file (issue #16): read-only, with the append-only history.

Changes go through ``orders.prescription_records.prescription_on_file_change`` so every one is
recorded with who, when, before and after; the admin only shows.
"""

from django.contrib import admin

from .models import PrescriptionOnFile, PrescriptionOnFileEvent


class EventInline(admin.TabularInline):
    model = PrescriptionOnFileEvent
    fields = ("created_at", "kind", "order", "pills", "refills_counted", "by", "note")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(PrescriptionOnFile)
class PrescriptionOnFileAdmin(admin.ModelAdmin):
    list_display = (
        "patient_name",
        "medicine",
        "strength",
        "refills_used",
        "refills_authorised",
        "expires_on",
        "last_filled_on",
    )
    search_fields = ("patient_name", "medicine", "user__email")
    list_select_related = ("user",)
    inlines = [EventInline]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
