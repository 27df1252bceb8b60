"""URLs for prescriptions on file and refills (issue #16); included from ``pharmacy.urls``."""

from django.urls import path

from . import refill_views

app_name = "refills"

urlpatterns = [
    path("accounts/prescriptions/", refill_views.my_prescriptions, name="list"),
    path("accounts/prescriptions/reminders/", refill_views.reminder_settings, name="reminders"),
    path("accounts/prescriptions/<int:pk>/", refill_views.prescription_detail, name="detail"),
    path("accounts/prescriptions/<int:pk>/refill/", refill_views.refill, name="refill"),
    path("orders/<int:number>/order-again/", refill_views.order_again, name="order_again"),
    path(
        "staff/review/<int:number>/refill/approve/",
        refill_views.refill_approve,
        name="refill_approve",
    ),
    path(
        "staff/review/<int:number>/refill/refuse/", refill_views.refill_refuse, name="refill_refuse"
    ),
]
