"""Read-only admin for transfers in and renewal requests (imported by ``prescriptions.admin``).

Pharmacists act on the queues (``/staff/transfers/``, ``/staff/renewals/``), where every step is
permission-checked and audited; the admin shows the rows and their history and changes nothing.
"""

from __future__ import annotations

from django.contrib import admin

from .models import RenewalEvent, RenewalRequest, TransferEvent, TransferRequest


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class _EventInline(admin.TabularInline):
    fields = ("created_at", "from_status", "to_status", "by", "note")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class TransferEventInline(_EventInline):
    model = TransferEvent


class RenewalEventInline(_EventInline):
    model = RenewalEvent


@admin.register(TransferRequest)
class TransferRequestAdmin(_ReadOnly):
    list_display = (
        "pk",
        "medicine",
        "strength",
        "patient_name",
        "pharmacy_name",
        "status",
        "created_at",
    )
    list_filter = ("status",)
    search_fields = ("patient_name", "pharmacy_name", "pharmacy_rx_number", "user__email")
    inlines = (TransferEventInline,)


@admin.register(RenewalRequest)
class RenewalRequestAdmin(_ReadOnly):
    list_display = ("pk", "prescription", "status", "created_at")
    list_filter = ("status",)
    search_fields = ("prescription__patient_name", "prescription__user__email")
    inlines = (RenewalEventInline,)
