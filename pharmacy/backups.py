"""Backups of everything the pharmacy cannot rebuild: the database and the media folders.

The database goes through django-dbbackup (``pg_dump --format=custom``, restored with
``pg_restore`` into an empty database). dbbackup's own media backup covers only Django's default
storage (``MEDIA_ROOT``), while prescription files live in ``PRIVATE_MEDIA_ROOT`` on purpose, so
both folders go into one tar archive here, encrypted with dbbackup's GPG helper for the same
recipient and written to the same backup storage. A backup is the pair taken in one run; the
files archive is written after the database dump, so it holds at least every file the dump names.

Retention is by age (``BACKUP_KEEP_DAYS``), not by count: a week of extra manual runs must not
push the oldest nights out. The newest database and files backups are never deleted, however
old, so a server whose timer stopped still has its last backup.
"""

from __future__ import annotations

import logging
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dbbackup import settings as dbbackup_settings
from dbbackup import utils as dbbackup_utils
from dbbackup.storage import get_storage
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

logger = logging.getLogger(__name__)

#: The folders in the files archive, by the setting that says where each lives.
FOLDERS = {"private": "PRIVATE_MEDIA_ROOT", "media": "MEDIA_ROOT"}


class BackupError(RuntimeError):
    """A backup or restore cannot go ahead as asked (the reason is for the operator)."""


@dataclass(frozen=True)
class BackupSet:
    database: str
    files: str


def _require_recipient() -> None:
    if not settings.BACKUP_GPG_RECIPIENT:
        raise BackupError(
            "BACKUP_GPG_RECIPIENT is not set: backups hold health data and are written encrypted only."
        )


def _files_archive() -> tempfile.SpooledTemporaryFile:
    archive = dbbackup_utils.create_spooled_temporary_file()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for name, setting in FOLDERS.items():
            root = Path(getattr(settings, setting))
            if root.is_dir():
                tar.add(root, arcname=name)
    archive.seek(0)
    return archive


def backup_run(*, now: datetime | None = None) -> BackupSet:
    """Write one encrypted database dump and one encrypted files archive, then delete old ones."""
    _require_recipient()
    now = now or timezone.now()
    stamp = now.astimezone(UTC).strftime(dbbackup_settings.DATE_FORMAT)
    server = dbbackup_settings.HOSTNAME
    database_name = f"database-{server}-{stamp}.psql.bin.gpg"
    call_command("dbbackup", encrypt=True, output_filename=database_name, verbosity=0)
    archive = _files_archive()
    encrypted, files_name = dbbackup_utils.encrypt_file(archive, f"files-{server}-{stamp}.tar.gz")
    get_storage().write_file(encrypted, files_name)
    backup_cleanup(now=now)
    logger.info("Backup written: %s and %s", database_name, files_name)
    return BackupSet(database=database_name, files=files_name)


def backup_list() -> list[str]:
    """The backups in the backup storage, oldest first (names carry their time)."""
    storage = get_storage()
    names = [name for name in storage.list_directory() if name.endswith(".gpg")]
    return sorted(names, key=_taken_at)


def _taken_at(name: str) -> datetime:
    taken = dbbackup_utils.filename_to_date(name)
    return timezone.make_aware(taken, UTC) if taken else datetime.min.replace(tzinfo=UTC)


def backup_cleanup(*, now: datetime | None = None, keep_days: int | None = None) -> list[str]:
    """Delete backups older than ``keep_days`` (BACKUP_KEEP_DAYS), keeping the newest of each kind."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.BACKUP_KEEP_DAYS if keep_days is None else keep_days)
    names = backup_list()
    newest = {
        kind: max((n for n in names if n.startswith(kind)), key=_taken_at, default=None)
        for kind in ("database-", "files-")
    }
    deleted = [name for name in names if _taken_at(name) < cutoff and name not in newest.values()]
    storage = get_storage()
    for name in deleted:
        storage.delete_file(name)
        if storage.storage.exists(f"{name}.metadata"):  # dbbackup's note of the connector used
            storage.delete_file(f"{name}.metadata")
    return deleted


def _latest(prefix: str) -> str:
    names = [name for name in backup_list() if name.startswith(prefix)]
    if not names:
        raise BackupError(f"No {prefix.rstrip('-')} backup in {settings.BACKUP_DIR}.")
    return names[-1]


def restore_run(
    *, database: str | None = None, files: str | None = None, passphrase: str | None = None
) -> BackupSet:
    """Restore the database (into an empty database) and the media folders (into empty folders).

    Refuses to write over a folder that already holds files: a restore is a recovery into a
    fresh place, never a merge with what is there.
    """
    database = database or _latest("database-")
    files = files or _latest("files-")
    for setting in FOLDERS.values():
        root = Path(getattr(settings, setting))
        if root.is_dir() and any(root.iterdir()):
            raise BackupError(f"{setting} ({root}) is not empty; restore into an empty folder.")
    call_command(
        "dbrestore",
        decrypt=True,
        passphrase=passphrase,
        input_filename=database,
        interactive=False,
        verbosity=0,
    )
    _restore_files(files, passphrase=passphrase)
    logger.info("Restored %s and %s", database, files)
    return BackupSet(database=database, files=files)


def _restore_files(name: str, *, passphrase: str | None) -> None:
    encrypted = get_storage().read_file(name)
    archive, _ = dbbackup_utils.unencrypt_file(encrypted, name, passphrase)
    archive.seek(0)
    with tarfile.open(fileobj=archive, mode="r:gz") as tar:
        for folder, setting in FOLDERS.items():
            members = [
                m for m in tar.getmembers() if m.name == folder or m.name.startswith(f"{folder}/")
            ]
            for member in members:
                member.name = member.name[len(folder) :].lstrip("/") or "."
            # filter="data": no absolute paths, no "..", no links out, no devices.
            tar.extractall(Path(getattr(settings, setting)), members=members, filter="data")
