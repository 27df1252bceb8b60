from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from . import services
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
    list_display = (
        "email",
        "first_name",
        "last_name",
        "is_staff",
        "is_active",
        "date_joined",
        "closed_at",
    )
    list_filter = ("is_staff", "is_superuser", "is_active", "groups")
    search_fields = ("email", "first_name", "last_name")
    readonly_fields = ("closed_at", "last_login", "date_joined")
    inlines = (PatientProfileInline, AddressInline)
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name")}),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Important dates", {"fields": ("last_login", "date_joined", "closed_at")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
    actions = ("reset_second_factor",)

    @admin.action(
        description="Reset the second factor (lost phone)", permissions=["reset_second_factor"]
    )
    def reset_second_factor(self, request, queryset) -> None:
        """Recorded in the user's history by the service (who, when); they set up a new one."""
        done = 0
        for user in queryset:
            try:
                services.staff_second_factor_reset(user=user, by=request.user)
            except services.NotAllowed as refusal:
                self.message_user(request, f"{user}: {refusal}", messages.ERROR)
            else:
                done += 1
        if done:
            self.message_user(
                request,
                f"Second factor reset for {done} account(s); they set up a new one at next sign-in.",
                messages.SUCCESS,
            )

    def has_reset_second_factor_permission(self, request) -> bool:
        return request.user.is_superuser

    def get_inlines(self, request, obj):
        # No inlines on the "add user" form: the user does not exist yet.
        return self.inlines if obj is not None else ()
