from django.conf import settings
from django.contrib import admin
from django.contrib.sitemaps.views import sitemap
from django.urls import include, path
from django.views.generic import RedirectView

from catalog.sitemaps import SITEMAPS
from catalog.views import robots_txt
from pharmacy import health, metrics

# Rate-limited requests (allauth's limits) get the shop's own page.
handler429 = "accounts.views.too_many_requests"

# The catalog comes first: its pages are most of the traffic, and Django tries patterns in order
# (last, a product page walked ~30 patterns of the other apps before matching). Its three
# patterns ("", "products/", "products/<slug>/") overlap no other app's.
urlpatterns = [
    path("", include("catalog.urls")),
    # Then the shopper's own pages, which every order passes through (none overlaps another app).
    path("cart/", include("cart.urls")),
    path("", include("checkout.urls")),
    path("", include("orders.urls")),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),  # token or allowed networks only
    path("sitemap.xml", sitemap, {"sitemaps": SITEMAPS}, name="sitemap"),
    path("robots.txt", robots_txt, name="robots_txt"),
    # Staff sign in like everyone else (allauth: verified email, rate limits, second factor).
    path("admin/login/", RedirectView.as_view(pattern_name="account_login", query_string=True)),
    path("admin/", admin.site.urls),
    path("", include("prescriptions.refill_urls")),  # prescriptions on file and refills
    path("", include("prescriptions.urls")),  # the pharmacist's review pages, prescription files
    path("", include("prescriptions.autorefill_urls")),  # auto-refill (issue 25)
    path("", include("prescriptions.message_urls")),  # messages with a pharmacist (issue 25)
    path("", include("prescriptions.transfer_urls")),  # transfer in (issue 25)
    path("", include("prescriptions.renewal_urls")),  # renewal requests (issue 25)
    path("accounts/", include("accounts.urls")),
    path("accounts/", include("allauth.urls")),
]

if getattr(settings, "BENCH_CEILING", False):
    urlpatterns.insert(0, path("bench/ceiling/", health.bench_ceiling, name="bench_ceiling"))
