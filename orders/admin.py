"""Staff view of orders. Statuses are changed only through the services (never by editing a
field), events are append-only, and refunds go through Stripe from the refund page."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from djmoney.money import Money

from payments.stripe_gateway import PaymentGatewayError

from . import fulfilment, services
from .models import Order, OrderEvent, OrderLine, OrderRefund, Shipment, StripeEvent
from .state import PaymentStatus


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class OrderLineInline(ReadOnlyInline):
    model = OrderLine
    fields = (
        "product_name",
        "strength",
        "pack_size",
        "packages",
        "unit_price",
        "per_pill",
        "line_total",
        "discount",
        "tax",
        "requires_prescription",
    )
    readonly_fields = fields


class OrderEventInline(ReadOnlyInline):
    model = OrderEvent
    fields = ("created_at", "kind", "from_status", "to_status", "note", "by")
    readonly_fields = fields


class OrderRefundInline(ReadOnlyInline):
    model = OrderRefund
    fields = ("created_at", "amount", "reason", "by", "stripe_refund_id")
    readonly_fields = fields


class RefundForm(forms.Form):
    amount = forms.DecimalField(
        max_digits=10,
        decimal_places=2,
        min_value=Decimal("0.01"),
        help_text="In US dollars; at most the amount still refundable.",
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Kept in the order history; not sent to Stripe.",
    )


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("number", "created_at", "email", "status", "payment_status", "total")
    list_filter = ("status", "payment_status", "has_prescription_items", "shipping_method")
    search_fields = ("=number", "email", "ship_name", "stripe_payment_intent_id")
    date_hierarchy = "created_at"
    list_select_related = ("user",)
    inlines = (OrderLineInline, OrderRefundInline, OrderEventInline)
    readonly_fields = (
        "number",
        "created_at",
        "updated_at",
        "user",
        "email",
        "status",
        "payment_status",
        "refund_link",
        "ship_name",
        "ship_line1",
        "ship_line2",
        "ship_city",
        "ship_state",
        "ship_zip",
        "shipping_method",
        "subtotal",
        "savings",
        "discount",
        "discount_code",
        "shipping",
        "tax",
        "tax_rule",
        "total",
        "amount_captured",
        "amount_refunded",
        "has_prescription_items",
        "stock_reserved",
        "stripe_payment_intent_id",
        "payment_error",
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "number",
                    "created_at",
                    "updated_at",
                    "user",
                    "email",
                    "status",
                    "payment_status",
                    "refund_link",
                )
            },
        ),
        (
            "Shipping",
            {
                "fields": (
                    "ship_name",
                    "ship_line1",
                    "ship_line2",
                    "ship_city",
                    "ship_state",
                    "ship_zip",
                    "shipping_method",
                )
            },
        ),
        (
            "Money",
            {
                "fields": (
                    "subtotal",
                    "savings",
                    "discount",
                    "discount_code",
                    "shipping",
                    "tax",
                    "tax_rule",
                    "total",
                    "amount_captured",
                    "amount_refunded",
                    "stripe_payment_intent_id",
                    "payment_error",
                )
            },
        ),
        ("Other", {"fields": ("has_prescription_items", "stock_reserved")}),
    )
    actions = ("refund_in_full",)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Refund")
    def refund_link(self, obj):
        if obj.pk and obj.payment_status in (
            PaymentStatus.CAPTURED,
            PaymentStatus.PARTIALLY_REFUNDED,
        ):
            return render_to_string(
                "admin/orders/_refund_link.html",
                {"url": reverse("admin:orders_order_refund", args=[obj.pk])},
            )
        return "Nothing to refund."

    def get_urls(self):
        return [
            path(
                "<uuid:pk>/refund/",
                self.admin_site.admin_view(self.refund_view),
                name="orders_order_refund",
            ),
            *super().get_urls(),
        ]

    def has_refund_permission(self, request, obj=None) -> bool:
        """The refund page and the bulk action; ``order_refund`` checks the same permission."""
        return request.user.has_perm("orders.refund_order")

    def refund_view(self, request, pk):
        order = get_object_or_404(Order, pk=pk)
        if not self.has_refund_permission(request, order):
            raise PermissionDenied("You do not have permission to refund orders.")
        form = RefundForm(request.POST or None, initial={"amount": order.amount_refundable.amount})
        if request.method == "POST" and form.is_valid():
            try:
                services.order_refund(
                    order=order,
                    amount=Money(form.cleaned_data["amount"], order.total.currency),
                    reason=form.cleaned_data["reason"],
                    by=request.user,
                )
            except (services.OrderError, PaymentGatewayError) as exc:
                form.add_error(
                    None, getattr(exc, "message", None) or getattr(exc, "user_message", str(exc))
                )
            else:
                self.message_user(
                    request,
                    f"Refunded {form.cleaned_data['amount']} on order {order.number}.",
                    messages.SUCCESS,
                )
                return redirect("admin:orders_order_change", order.pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "order": order,
            "form": form,
            "title": f"Refund order {order.number}",
        }
        return TemplateResponse(request, "orders/admin_refund.html", context)

    @admin.action(
        description="Refund selected orders in full (reason: staff refund)", permissions=["refund"]
    )
    def refund_in_full(self, request, queryset):
        for order in queryset:
            try:
                services.order_refund(
                    order=order, amount=None, reason="Refunded in full by staff.", by=request.user
                )
            except (services.OrderError, PaymentGatewayError, PermissionDenied) as exc:
                self.message_user(
                    request, f"Order {order.number}: {getattr(exc, 'message', exc)}", messages.ERROR
                )
            else:
                self.message_user(
                    request, f"Order {order.number} refunded in full.", messages.SUCCESS
                )


@admin.register(StripeEvent)
class StripeEventAdmin(admin.ModelAdmin):
    list_display = ("event_id", "type", "processed", "received_at", "error")
    list_filter = ("processed", "type")
    search_fields = ("event_id",)
    readonly_fields = (
        "event_id",
        "type",
        "payload",
        "processed",
        "error",
        "received_at",
        "processed_at",
    )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- Shipments (read-only records; adding one marks a ready order shipped) ----------------


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ShipmentForm(forms.ModelForm):
    """Only orders ready to ship are offered; the service checks again under the row lock."""

    class Meta:
        model = Shipment
        fields = ("order", "carrier", "tracking_number")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["order"].queryset = fulfilment.ready_to_ship()
        self.fields[
            "order"
        ].help_text = "Orders paid (and, for prescription items, approved) and not yet shipped."


@admin.register(Shipment)
class ShipmentAdmin(ReadOnlyAdmin):
    """Shipments are read-only records; "Add shipment" marks a ready order shipped.

    The way for staff who pack parcels but are not pharmacists (a general-sale order needs no
    pharmacist): it needs ``orders.mark_shipped`` and goes through ``fulfilment.order_mark_shipped``,
    which records the shipment, moves the order and emails the customer.
    """

    list_display = ("order", "carrier", "tracking_number", "shipped_at", "by")
    search_fields = ("=order__number", "tracking_number")
    list_select_related = ("order", "by")
    readonly_fields = ("order", "carrier", "tracking_number", "shipped_at", "by")
    form = ShipmentForm

    def has_add_permission(self, request, obj=None):
        return request.user.has_perm("orders.mark_shipped")

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else ()

    def get_fields(self, request, obj=None):
        return ShipmentForm.Meta.fields if obj is None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        try:
            shipment = fulfilment.order_mark_shipped(
                order=obj.order,
                by=request.user,
                carrier=obj.carrier,
                tracking_number=obj.tracking_number,
            )
        except fulfilment.ShippingError as exc:
            # The order moved on between the form and the save (another member of staff).
            raise PermissionDenied(exc.message) from exc
        obj.pk = shipment.pk
        obj.shipped_at, obj.by = shipment.shipped_at, shipment.by
