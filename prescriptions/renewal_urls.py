"""URLs for renewal requests (issue 25); included from ``pharmacy.urls``."""

from django.urls import path

from . import renewal_views as views

app_name = "renewals"

urlpatterns = [
    path("accounts/prescriptions/<int:pk>/renewal/", views.renewal_start, name="start"),
    path("accounts/renewals/<int:pk>/", views.renewal_detail, name="detail"),
    path("staff/renewals/", views.renewal_queue, name="queue"),
    path("staff/renewals/<int:pk>/", views.renewal_review, name="review"),
    path("staff/renewals/<int:pk>/prescriber/", views.renewal_prescriber_page, name="prescriber"),
    path("staff/renewals/<int:pk>/sent/", views.renewal_sent, name="sent"),
    path("staff/renewals/<int:pk>/renew/", views.renewal_renew, name="renew"),
    path("staff/renewals/<int:pk>/deny/", views.renewal_deny, name="deny"),
]
