from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "Pharmacy administration"
admin.site.site_title = "Pharmacy admin"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("cart/", include("cart.urls")),
    path("", include("orders.urls")),
    path("", include("catalog.urls")),
]
