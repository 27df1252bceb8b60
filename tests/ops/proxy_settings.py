"""The shop's settings with two more pages (tests/ops/proxy_urls.py) that say what a request looked like to Django."""

from pharmacy.settings import *

ROOT_URLCONF = "tests.ops.proxy_urls"
