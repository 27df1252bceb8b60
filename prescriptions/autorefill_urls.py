"""URLs of auto-refill (issue 25); included from ``pharmacy.urls``."""

from django.urls import path

from . import autorefill_views as views

app_name = "autorefill"

urlpatterns = [
    path("accounts/prescriptions/<int:pk>/auto-refill/", views.manage, name="manage"),
    path("accounts/prescriptions/<int:pk>/auto-refill/start/", views.start, name="start"),
    path("accounts/prescriptions/<int:pk>/auto-refill/consent/", views.consent, name="consent"),
    path("accounts/prescriptions/<int:pk>/auto-refill/confirm/", views.confirm, name="confirm"),
    path("accounts/prescriptions/<int:pk>/auto-refill/<str:action>/", views.change, name="change"),
    path(
        "accounts/auto-refill/orders/<int:number>/cancel/", views.cancel_order, name="cancel_order"
    ),
    path("auto-refill/notice/<str:token>/<str:action>/", views.notice, name="notice"),
]
