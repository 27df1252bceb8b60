"""`manage.py check --deploy` is clean with the documented production variables, and not without."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    # A clean environment: only what the test sets, so the developer's shell cannot leak in.
    base = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DATABASE_URL": os.environ.get("DATABASE_URL", "sqlite:///:memory:"),
        "HOME": os.environ.get("HOME", "/tmp"),
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env={**base, **env},
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


def production_env(**extra: str) -> dict[str, str]:
    return {
        "PRODUCTION": "1",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(60),
        "ALLOWED_HOSTS": "shop.example.com",
        "CSRF_TRUSTED_ORIGINS": "https://shop.example.com",
        "SITE_URL": "https://shop.example.com",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        # Not connected to by `check`; it only has to be PostgreSQL.
        "DATABASE_URL": "postgres://pharmacy:secret@db.internal:5432/pharmacy",
        "EMAIL_URL": "smtp+tls://shop:secret@smtp.example.com:587",
        "DEFAULT_FROM_EMAIL": "Riverside Pharmacy <orders@shop.example.com>",
        "PHARMACY_EMAIL": "care@shop.example.com",
        "PHARMACY_STAFF_EMAIL": "pharmacist@shop.example.com",
        "PHARMACY_LICENCE_NUMBER": "NY-PHY-031245",
        "PHARMACIST_IN_CHARGE": "Dana Whitfield, PharmD",
        "STRIPE_SECRET_KEY": "sk_live_example",
        "STRIPE_PUBLISHABLE_KEY": "pk_live_example",
        "STRIPE_WEBHOOK_SECRET": "whsec_example",
        **extra,
    }


def test_production_switch_passes_deploy_check_without_warnings():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_each_variable_set_explicitly_also_passes():
    env = {
        **{k: v for k, v in production_env().items() if k != "PRODUCTION"},
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(60),
        "ALLOWED_HOSTS": "shop.example.com",
        "SECURE_SSL_REDIRECT": "1",
        "SESSION_COOKIE_SECURE": "1",
        "CSRF_COOKIE_SECURE": "1",
        "SECURE_HSTS_SECONDS": "31536000",
        "SECURE_HSTS_PRELOAD": "1",
        "BEHIND_PROXY": "1",
    }
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_development_defaults_are_reported_as_unsafe():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env={})
    assert result.returncode != 0
    output = result.stdout + result.stderr
    for warning in (
        "security.W004",
        "security.W008",
        "security.W009",
        "security.W012",
        "security.W016",
    ):
        assert warning in output


@pytest.mark.parametrize(
    "variable", ["SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"]
)
def test_a_production_default_can_be_switched_off_and_check_notices(variable):
    result = run_manage(
        "check", "--deploy", "--fail-level", "WARNING", env=production_env(**{variable: "0"})
    )
    assert result.returncode != 0


def test_production_refuses_to_start_without_a_secret_key():
    env = production_env()
    del env["SECRET_KEY"]
    result = run_manage("check", env=env)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


@pytest.mark.parametrize(
    ("missing", "warning"),
    [
        ("EMAIL_URL", "pharmacy.W001"),
        ("STRIPE_SECRET_KEY", "pharmacy.W002"),
        ("REDIS_URL", "pharmacy.W004"),
        ("PHARMACY_LICENCE_NUMBER", "pharmacy.W006"),
    ],
)
def test_a_missing_production_service_is_named(missing, warning):
    env = production_env()
    del env[missing]
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode != 0
    assert warning in result.stdout + result.stderr
    assert (
        missing.split("_")[0] in result.stdout + result.stderr
    )  # the hint names the variable to set


def test_localstripe_or_sqlite_in_production_are_reported():
    env = production_env(
        STRIPE_API_BASE="http://127.0.0.1:8420", DATABASE_URL="sqlite:///db.sqlite3"
    )
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "pharmacy.W003" in output and "pharmacy.W005" in output


@pytest.mark.parametrize("private", ["{media}/private", "{media}"])
def test_prescriptions_inside_public_media_stop_every_command(tmp_path, private):
    media = tmp_path / "media"
    result = run_manage(
        "check", env={"MEDIA_ROOT": str(media), "PRIVATE_MEDIA_ROOT": private.format(media=media)}
    )
    assert result.returncode != 0
    assert "pharmacy.E001" in result.stdout + result.stderr


def test_separate_private_media_passes(tmp_path):
    env = {"MEDIA_ROOT": str(tmp_path / "media"), "PRIVATE_MEDIA_ROOT": str(tmp_path / "private")}
    result = run_manage("check", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
