from django.apps import AppConfig


class SalesTaxConfig(AppConfig):
    name = "salestax"
    verbose_name = "Sales tax"
