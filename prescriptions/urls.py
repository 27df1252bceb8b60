"""The pharmacist's pages (the review queue and its decisions) and the permission-checked
prescription files. The customer's prescriptions on file and refills are ``refill_urls``."""

from django.urls import path

from . import review_views

app_name = "prescriptions"

urlpatterns = [
    # Prescriptions: permission-checked files and the pharmacist's review pages.
    path("prescriptions/<uuid:pk>/", review_views.prescription_file, name="prescription_file"),
    path("staff/review/", review_views.review_queue, name="review_queue"),
    path("staff/review/<int:number>/", review_views.review_order, name="review_order"),
    path("staff/review/<int:number>/approve/", review_views.review_approve, name="review_approve"),
    path(
        "staff/review/<int:number>/approve-with-changes/",
        review_views.review_approve_with_changes,
        name="review_approve_changes",
    ),
    path(
        "staff/review/<int:number>/approve/preview/",
        review_views.review_approve_preview,
        name="review_approve_preview",
    ),
    path("staff/review/<int:number>/reject/", review_views.review_reject, name="review_reject"),
    path(
        "staff/review/<int:number>/request-information/",
        review_views.review_request_information,
        name="review_request_info",
    ),
    path("staff/review/<int:number>/ship/", review_views.review_mark_shipped, name="review_ship"),
]
