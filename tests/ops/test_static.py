"""Production static files: collectstatic writes hashed, compressed files and pages link to them."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]


def test_collectstatic_writes_hashed_compressed_files_that_pages_use(tmp_path):
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PRODUCTION": "1",
        "SECRET_KEY": secrets.token_urlsafe(60),
        "STATIC_ROOT": str(tmp_path),
        "DATABASE_URL": "sqlite:///:memory:",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "pharmacy.settings",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"],
        cwd=BASE_DIR,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "staticfiles.json").exists()
    hashed = [p.name for p in (tmp_path / "css").glob("site.*.css")]
    assert len(hashed) == 1 and hashed[0] != "site.css"
    assert (tmp_path / "css" / (hashed[0] + ".gz")).exists()

    code = "import django; django.setup(); from django.templatetags.static import static; print(static('css/site.css'))"
    url = subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert url.returncode == 0, url.stderr
    assert url.stdout.strip() == f"/static/css/{hashed[0]}"
