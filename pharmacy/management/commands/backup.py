"""``manage.py backup``: one encrypted backup of the database and the media folders (docs/operations.md)."""

from django.core.management.base import BaseCommand, CommandError

from pharmacy.backups import BackupError, backup_run


class Command(BaseCommand):
    help = "Back up the database and the media folders, encrypted for BACKUP_GPG_RECIPIENT; delete old backups."

    def handle(self, *args, **options):
        try:
            written = backup_run()
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{written.database}\n{written.files}\n")
