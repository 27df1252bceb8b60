from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from .models import Address, PatientProfile, User


class AddressInline(admin.StackedInline):
    model = Address
    extra = 0
    fields = ("full_name", "line1", "line2", "city", "state", "postal_code", "is_default")


class PatientProfileInline(admin.StackedInline):
    """Pharmacists read the health details here when reviewing a prescription order."""

    model = PatientProfile
    can_delete = False
    extra = 0
    readonly_fields = ("updated_at",)


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ("email",)
    list_display = ("email", "first_name", "last_name", "is_staff", "is_active", "date_joined", "closed_at")
    list_filter = ("is_staff", "is_superuser", "is_active", "groups")
    search_fields = ("email", "first_name", "last_name")
    readonly_fields = ("closed_at", "last_login", "date_joined")
    inlines = (PatientProfileInline, AddressInline)
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Important dates", {"fields": ("last_login", "date_joined", "closed_at")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)

    def get_inlines(self, request, obj):
        # No inlines on the "add user" form: the user does not exist yet.
        return self.inlines if obj is not None else ()
