"""The restore drill: back a shop up, destroy it, restore it elsewhere, find everything again.

The shop lives in its own throwaway PostgreSQL database (not the test database) and its own
media folders, built and inspected by ``tests/ops/backup_drill_shop.py`` in subprocesses, as
``manage.py backup`` / ``manage.py restore`` run on a server. The backup side holds only the
public GPG key; the restore side holds the private key (a throwaway one made here).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from datetime import UTC, timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from tests.localstripe import SECRET_KEY

ROOT = Path(__file__).resolve().parents[2]
PASSPHRASE = "restore drill passphrase"
KEY_ID = "Backup drill <backup-drill@pharmacy.example>"

pytestmark = pytest.mark.integration


def _pg() -> dict:
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("the drill restores PostgreSQL")
    env = {
        "PGHOST": db["HOST"] or "127.0.0.1",
        "PGPORT": str(db["PORT"] or 5432),
        "PGUSER": db["USER"] or "postgres",
    }
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = db["PASSWORD"]
    return env


def _url(pg: dict, name: str) -> str:
    password = f":{pg['PGPASSWORD']}" if pg.get("PGPASSWORD") else ""
    return f"postgres://{pg['PGUSER']}{password}@{pg['PGHOST']}:{pg['PGPORT']}/{name}"


def _run(args: list[str], env: dict, timeout: float = 300) -> str:
    done = subprocess.run(
        args, cwd=ROOT, env=env, check=False, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _gpg(home: Path, *args: str, stdin: bytes | None = None) -> bytes:
    home.mkdir(mode=0o700, exist_ok=True)
    done = subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", *args],
        input=stdin,
        check=False,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


@pytest.fixture
def keyrings(tmp_path):
    """(server keyring with the public key only, restorer's keyring with the private key)."""
    restorer, server = tmp_path / "gpg-restorer", tmp_path / "gpg-server"
    _gpg(
        restorer,
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        PASSPHRASE,
        "--quick-gen-key",
        KEY_ID,
        "default",
        "default",
        "never",
    )
    _gpg(server, "--import", stdin=_gpg(restorer, "--export", "--armor", KEY_ID))
    yield server, restorer
    for home in (server, restorer):
        subprocess.run(
            ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
            check=False,
            capture_output=True,
            timeout=10,
        )


@pytest.fixture
def databases():
    """Names for throwaway databases, each dropped afterwards whatever happened."""
    pg = _pg()
    env = {**os.environ, **pg}
    names: list[str] = []

    def create() -> str:
        name = f"pharmacy_drill_{uuid.uuid4().hex[:10]}"
        _run(["createdb", name], env)
        names.append(name)
        return name

    yield pg, env, create
    for name in names:
        subprocess.run(
            ["dropdb", "--if-exists", "--force", name],
            env=env,
            check=False,
            capture_output=True,
            timeout=60,
        )


def _shop_env(
    base: dict, *, pg: dict, database: str, folder: Path, gnupghome: Path, localstripe=None
) -> dict:
    env = {
        key: value
        for key, value in base.items()
        if not key.startswith(("REDIS", "CELERY", "CACHE_", "PG"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="pharmacy.settings",
        DATABASE_URL=_url(pg, database),
        PRIVATE_MEDIA_ROOT=str(folder / "private"),
        MEDIA_ROOT=str(folder / "media"),
        EMAIL_FILE_PATH=str(folder / "emails"),
        BACKUP_DIR=str(folder.parent / "backups"),
        BACKUP_GPG_RECIPIENT=KEY_ID,
        GNUPGHOME=str(gnupghome),
        PYTHONPATH=str(ROOT),
    )
    if localstripe is not None:
        env.update(STRIPE_API_BASE=localstripe.base, STRIPE_SECRET_KEY=SECRET_KEY)
    return env


def test_a_backup_restores_every_order_prescription_file_and_audit_row(
    databases, keyrings, localstripe_server, tmp_path
):
    pg, base_env, create = databases
    server_keys, restorer_keys = keyrings
    python = sys.executable

    live = create()
    shop = _shop_env(
        base_env,
        pg=pg,
        database=live,
        folder=tmp_path / "live",
        gnupghome=server_keys,
        localstripe=localstripe_server,
    )
    _run([python, "manage.py", "migrate", "--no-input", "-v0"], shop)
    uploaded = json.loads(_run([python, "-m", "tests.ops.backup_drill_shop", "populate"], shop))[
        "uploaded"
    ]
    before = json.loads(_run([python, "-m", "tests.ops.backup_drill_shop", "inventory"], shop))
    # The shop is worth restoring: both orders, both files (their uploaded bytes), the record on
    # file, the review, the price change.
    assert (
        len(before["orders"]) == 2
        and len(before["records_on_file"]) == 1
        and len(before["reviews"]) == 1
    )
    assert sorted(digest for _, digest in before["prescription_files"]) == uploaded
    assert len(before["price_history"]) == 2 and before["order_events"] and before["record_events"]

    written = _run([python, "manage.py", "backup"], shop).split()
    backups = sorted(os.listdir(tmp_path / "backups"))
    assert [name for name in backups if name.endswith(".gpg")] == sorted(written)
    for name in written:  # encrypted: no dump, file or patient text readable in the backup
        data = (tmp_path / "backups" / name).read_bytes()
        assert data.startswith(b"-----BEGIN PGP MESSAGE-----")
        # (markers with characters base64 armour never uses, so chance cannot produce them)
        assert b"%PDF" not in data and b"Penicillin (rash)" not in data and b"\x89PNG" not in data

    # Disaster: the database and the folders are gone.
    _run(["dropdb", "--force", live], base_env)
    shutil.rmtree(tmp_path / "live")

    fresh = create()
    # The server keeps only the public key: with its keyring (the passphrase is no use without the
    # private key) a stolen server or backup reveals nothing, and nothing is restored.
    stolen = _shop_env(
        base_env, pg=pg, database=fresh, folder=tmp_path / "new-server", gnupghome=server_keys
    )
    stolen["BACKUP_GPG_PASSPHRASE"] = PASSPHRASE
    refused = subprocess.run(
        [python, "manage.py", "restore"],
        cwd=ROOT,
        env=stolen,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode != 0 and "Decryption failed" in refused.stderr
    assert not (tmp_path / "new-server" / "private").exists()

    restored = {**stolen, "GNUPGHOME": str(restorer_keys)}
    started = time.perf_counter()
    _run([python, "manage.py", "restore"], restored)
    print(f"restore of the drill shop: {time.perf_counter() - started:.1f} s")
    after = json.loads(_run([python, "-m", "tests.ops.backup_drill_shop", "inventory"], restored))
    assert after == before
    assert sorted(digest for _, digest in after["prescription_files"]) == uploaded


def test_old_backups_are_deleted_after_the_keep_days_and_the_newest_pair_never(
    tmp_path, monkeypatch
):
    from dbbackup import settings as dbbackup_settings

    from pharmacy.backups import backup_cleanup

    monkeypatch.setattr(dbbackup_settings, "STORAGE_OPTIONS", {"location": str(tmp_path)})
    now = timezone.now()

    def name(kind: str, days_ago: float) -> str:
        stamp = (
            (now - timedelta(days=days_ago)).astimezone(UTC).strftime(dbbackup_settings.DATE_FORMAT)
        )
        return f"{kind}-pharmacy-{stamp}.{'psql.bin' if kind == 'database' else 'tar.gz'}.gpg"

    newest = [name(kind, 0.5) for kind in ("database", "files")]
    within = [name(kind, 29.9) for kind in ("database", "files")]
    old = [name(kind, days) for kind in ("database", "files") for days in (30.1, 45)]
    for filename in newest + within + old:
        (tmp_path / filename).write_bytes(b"x")
    (tmp_path / f"{old[0]}.metadata").write_text("{}")

    assert sorted(backup_cleanup(now=now, keep_days=30)) == sorted(old)
    assert sorted(os.listdir(tmp_path)) == sorted(newest + within)

    # Backups stopped two months ago: the last pair stays whatever its age.
    assert sorted(backup_cleanup(now=now + timedelta(days=60), keep_days=30)) == sorted(within)
    assert sorted(os.listdir(tmp_path)) == sorted(newest)
