"""Content-Security-Policy: our origin and Stripe.js, nothing else third-party."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]


def directives(header: str) -> dict[str, set[str]]:
    parsed = {}
    for part in header.split(";"):
        name, *values = part.split()
        parsed[name] = set(values)
    return parsed


def third_party(values: set[str]) -> set[str]:
    return {
        v
        for v in values
        if re.match(r"^(https?:)?//|^[a-z0-9.-]+\.[a-z]{2,}", v) or v.startswith("http")
    }


@pytest.mark.django_db
def test_pages_allow_only_stripe_as_a_third_party(client, settings):
    settings.STRIPE_JS_URL = "https://js.stripe.com/v3/"
    header = client.get("/")["Content-Security-Policy"]
    policy = directives(header)
    assert policy["default-src"] == {"'self'"}
    assert third_party(policy["script-src"]) == {"https://js.stripe.com"}
    assert third_party(policy["frame-src"]) == {"https://js.stripe.com", "https://hooks.stripe.com"}
    assert third_party(policy["connect-src"]) == {"https://api.stripe.com"}
    for name in ("style-src", "img-src", "font-src", "form-action", "base-uri"):
        assert third_party(policy[name]) == set(), name
    assert policy["frame-ancestors"] == {"'none'"}
    assert policy["object-src"] == {"'none'"}
    assert "'unsafe-inline'" not in header and "'unsafe-eval'" not in header


def test_localstripe_origin_is_allowed_when_the_demo_points_stripe_there():
    code = (
        "import django; django.setup();"
        "from django.test import Client;"
        "print(Client().get('/healthz')['Content-Security-Policy'])"
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DJANGO_SETTINGS_MODULE": "pharmacy.settings",
        "DATABASE_URL": "sqlite:///:memory:",
        "STRIPE_JS_URL": "http://127.0.0.1:8420/js.stripe.com/v3/",
        "STRIPE_API_BASE": "http://127.0.0.1:8420",
        "LOG_LEVEL": "WARNING",
    }
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    policy = directives(result.stdout.strip().splitlines()[-1])
    assert "http://127.0.0.1:8420" in policy["script-src"]
    assert "http://127.0.0.1:8420" in policy["connect-src"]
    assert "https://js.stripe.com" in policy["script-src"]
