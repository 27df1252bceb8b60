"""URLs for transfers in (issue 25); included from ``pharmacy.urls``."""

from django.urls import path

from . import transfer_views as views

app_name = "transfers"

urlpatterns = [
    path("accounts/transfers/", views.transfer_list, name="list"),
    path("accounts/transfers/new/", views.transfer_new, name="new"),
    path("accounts/transfers/<int:pk>/", views.transfer_detail, name="detail"),
    path("staff/transfers/", views.transfer_queue, name="queue"),
    path("staff/transfers/<int:pk>/", views.transfer_review, name="review"),
    path("staff/transfers/<int:pk>/contacted/", views.transfer_contacted, name="contacted"),
    path("staff/transfers/<int:pk>/receive/", views.transfer_receive, name="receive"),
    path("staff/transfers/<int:pk>/refuse/", views.transfer_refuse, name="refuse"),
]
