from django.urls import path

from . import views

app_name = "orders"

urlpatterns = [
    path("orders/<int:number>/", views.order_detail, name="detail"),
    path("orders/<int:number>/receipt/", views.order_receipt, name="receipt"),
    path("orders/<int:number>/receipt.pdf", views.order_receipt_pdf, name="receipt_pdf"),
    path("stripe/webhook/", views.stripe_webhook, name="stripe_webhook"),
]
