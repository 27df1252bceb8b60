from django.contrib import admin

from pharmacy.admin_history import HistoryAdmin

from .models import TaxRate


@admin.register(TaxRate)
class TaxRateAdmin(HistoryAdmin):
    """Staff edit rates here; a change of rate is best entered as a new row with its effective date."""

    list_display = ("state", "rate", "otc_exempt", "shipping_taxable", "effective_from", "note")
    list_filter = ("state", "otc_exempt", "shipping_taxable")
    search_fields = ("state", "note")
    ordering = ("state", "-effective_from")
