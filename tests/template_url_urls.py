"""A second URLconf for tests/test_template_url.py: the same name at another address."""
from django.urls import path

from pharmacy import health

urlpatterns = [
    path("elsewhere/healthz", health.healthz, name="healthz"),
    path("elsewhere/<str:word>/", health.healthz, name="word"),
]
