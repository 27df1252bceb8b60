from django.urls import path

from . import views

app_name = "cart"

# Contract used by the product page: POST to cart:add with ``tier_id`` and ``packages``.
urlpatterns = [
    path("", views.cart_detail, name="detail"),
    path("add/", views.cart_add, name="add"),
    path("update/", views.cart_update, name="update"),
    path("remove/", views.cart_remove, name="remove"),
    path("code/", views.cart_discount_apply, name="discount_apply"),
    path("code/remove/", views.cart_discount_remove, name="discount_remove"),
]
