"""``manage.py restore``: a backup back into an empty database and empty media folders (docs/operations.md)."""

import os

from django.core.management.base import BaseCommand, CommandError

from pharmacy.backups import BackupError, restore_run


class Command(BaseCommand):
    help = (
        "Restore the newest backup (or the named ones) into the empty database and media folders the settings "
        "name. The GPG private key must be in the keyring; its passphrase comes from BACKUP_GPG_PASSPHRASE."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--database-file", help="A database-….psql.bin.gpg in BACKUP_DIR (default: the newest)"
        )
        parser.add_argument(
            "--files-file", help="A files-….tar.gz.gpg in BACKUP_DIR (default: the newest)"
        )

    def handle(self, *args, **options):
        try:
            restored = restore_run(
                database=options["database_file"],
                files=options["files_file"],
                passphrase=os.environ.get("BACKUP_GPG_PASSPHRASE") or None,
            )
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{restored.database}\n{restored.files}\n")
