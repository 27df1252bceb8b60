from django.contrib import admin, messages

from .models import PRERENDERED_KINDS, DigestEntry, EmailStatus, OutboundEmail
from .services import email_resend


class DigestEntryInline(admin.TabularInline):
    model = DigestEntry
    fields = ("order", "day")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(OutboundEmail)
class OutboundEmailAdmin(admin.ModelAdmin):
    """The outbox, read-only: what was sent to whom and when; staff can only ask for a resend."""

    list_display = (
        "created_at",
        "kind",
        "order",
        "recipient",
        "status",
        "attempts",
        "next_attempt_at",
        "sent_at",
    )
    list_filter = ("status", "kind")
    search_fields = ("recipient", "order__number", "dedupe_key")
    list_select_related = ("order",)
    date_hierarchy = "created_at"
    actions = ["resend"]
    inlines = [DigestEntryInline]
    fields = (
        "kind",
        "order",
        "recipient",
        "subject",
        "status",
        "attempts",
        "next_attempt_at",
        "last_error",
        "reported_at",
        "dedupe_key",
        "context",
        "created_at",
        "updated_at",
        "sent_at",
    )
    readonly_fields = fields

    def get_fields(self, request, obj=None):
        # A pre-rendered email's body may hold a live link (password reset, verification): staff
        # see that it was sent, to whom and when, never the link itself.
        if obj is not None and obj.kind in PRERENDERED_KINDS:
            return tuple(field for field in self.fields if field != "context")
        return self.fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        # The record is never edited; "Resend" needs its own permission (resend_email) below.
        return False

    @admin.action(description="Resend the selected emails", permissions=["resend"])
    def resend(self, request, queryset) -> None:
        resent = skipped = 0
        for email in queryset.select_related(None):
            if email_resend(email=email, by=request.user):
                resent += 1
                self.log_change(request, email, "Resend requested.")
            else:
                skipped += 1
        if resent:
            self.message_user(
                request, f"{resent} email(s) queued to be sent again.", messages.SUCCESS
            )
        if skipped:
            self.message_user(
                request,
                f"{skipped} email(s) skipped: only sent, failed or waiting emails can be resent "
                f"({EmailStatus.QUEUED.label.lower()} ones are already on their way).",
                messages.WARNING,
            )

    def has_resend_permission(self, request) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.resend_email")
