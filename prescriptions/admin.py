"""Staff view of prescriptions: all read-only.

Decisions are made on /staff/review/ (``prescriptions.review_views``) and the review record is
append-only. Changes to a prescription on file go through
``prescriptions.on_file_record.prescription_on_file_change`` so every one is recorded with who,
when, before and after; the admin only shows.
"""

from django.contrib import admin
from django.template.loader import render_to_string
from django.urls import reverse

from .models import (
    PatientDetails,
    Prescription,
    PrescriptionOnFile,
    PrescriptionOnFileEvent,
    PrescriptionReview,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(PrescriptionReview)
class PrescriptionReviewAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "order", "action", "by", "ordered_total", "approved_total")
    list_filter = ("action",)
    search_fields = ("=order__number", "by__email")
    list_select_related = ("order", "by")
    date_hierarchy = "created_at"
    readonly_fields = (
        "order",
        "action",
        "by",
        "created_at",
        "note",
        "ordered_total",
        "approved_total",
        "changes",
    )
    exclude = ("submission_key",)


@admin.register(Prescription)
class PrescriptionAdmin(ReadOnlyAdmin):
    """No file widget: the storage has no URL; the copy opens through the permission-checked view."""

    list_display = ("order", "description", "has_copy", "prescriber_name", "created_at")
    search_fields = ("=order__number", "prescriber_name", "prescriber_licence")
    list_select_related = ("order",)
    fields = (
        "order",
        "line",
        "description",
        "copy_link",
        "content_type",
        "size",
        "prescriber_name",
        "prescriber_phone",
        "prescriber_licence",
        "created_at",
    )
    readonly_fields = fields

    @admin.display(boolean=True, description="Copy uploaded")
    def has_copy(self, obj):
        return obj.has_file

    @admin.display(description="Uploaded copy")
    def copy_link(self, obj):
        if not obj.has_file:
            return "None: obtain it from the prescriber."
        return render_to_string(
            "admin/prescriptions/_copy_link.html",
            {"url": reverse("prescriptions:prescription_file", args=[obj.pk])},
        )


@admin.register(PatientDetails)
class PatientDetailsAdmin(ReadOnlyAdmin):
    list_display = ("order", "name", "date_of_birth", "created_at")
    search_fields = ("=order__number", "name")
    list_select_related = ("order",)
    readonly_fields = (
        "order",
        "name",
        "date_of_birth",
        "allergies",
        "current_medicines",
        "created_at",
    )


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


from . import care_admin  # noqa: F401  (transfers and renewals, issue 25)
