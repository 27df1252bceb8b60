"""pharmacy.static_storage: WhiteNoise's manifest storage, each URL worked out once (issue #17)."""

import json

import pytest
from django.test import override_settings
from whitenoise.storage import CompressedManifestStaticFilesStorage

from pharmacy.static_storage import RememberingManifestStaticFilesStorage


@pytest.fixture
def static_root(tmp_path):
    (tmp_path / "css").mkdir()
    (tmp_path / "css" / "site.abc123.css").write_text("body{}")
    manifest = {"paths": {"css/site.css": "css/site.abc123.css"}, "version": "1.1", "hash": "x"}
    (tmp_path / "staticfiles.json").write_text(json.dumps(manifest))
    return tmp_path


def storages(root):
    return (
        RememberingManifestStaticFilesStorage(location=str(root), base_url="/static/"),
        CompressedManifestStaticFilesStorage(location=str(root), base_url="/static/"),
    )


def test_same_urls_as_whitenoise_every_time(static_root, settings):
    settings.DEBUG = False
    ours, theirs = storages(static_root)
    for name in ("css/site.css", "css/site.css?#iefix", "css/site.css#top", "css/"):
        for _ in range(2):
            assert ours.url(name) == theirs.url(name)
    assert ours.url("css/site.css") == "/static/css/site.abc123.css"
    with override_settings(DEBUG=True):
        assert ours.url("css/site.css") == theirs.url("css/site.css") == "/static/css/site.css"
    assert ours.url("css/site.css", force=True) == theirs.url("css/site.css", force=True)


def test_a_missing_file_still_raises_and_is_not_kept(static_root, settings):
    settings.DEBUG = False
    ours, _ = storages(static_root)
    for _ in range(2):
        with pytest.raises(ValueError):
            ours.url("css/missing.css")
    assert not any(key[0] == "css/missing.css" for key in ours._urls)


def test_a_new_manifest_starts_afresh(static_root, settings):
    settings.DEBUG = False
    ours, _ = storages(static_root)
    assert ours.url("css/site.css") == "/static/css/site.abc123.css"
    ours.hashed_files = {"css/site.css": "css/site.def456.css"}
    list(ours.post_process({}, dry_run=True))  # collectstatic's step that writes a manifest
    assert ours._urls == {}


def test_production_uses_it():
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = "import django; django.setup(); from django.conf import settings; print(settings.STORAGES['staticfiles']['BACKEND'])"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PRODUCTION": "1",
        "SECRET_KEY": "x" * 60,
        "DATABASE_URL": "sqlite:///:memory:",
        "DJANGO_SETTINGS_MODULE": "pharmacy.settings",
        "LOG_LEVEL": "WARNING",
    }
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout.strip().splitlines()[-1]
        == "pharmacy.static_storage.RememberingManifestStaticFilesStorage"
    )
