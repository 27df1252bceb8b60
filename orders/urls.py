from django.urls import path

from . import review_views, views

app_name = "orders"

urlpatterns = [
    path("checkout/", views.checkout, name="checkout"),
    path("orders/<int:number>/", views.order_detail, name="detail"),
    path("orders/<int:number>/receipt/", views.order_receipt, name="receipt"),
    path("orders/<int:number>/receipt.pdf", views.order_receipt_pdf, name="receipt_pdf"),
    path("stripe/webhook/", views.stripe_webhook, name="stripe_webhook"),
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
