"""A test-only email backend for the worker test: the first send hangs (the worker is killed
during it); later sends are written by Django's file backend into ``EMAIL_FILE_PATH``."""

import os
import time
from pathlib import Path

from django.core.mail.backends.filebased import EmailBackend as FileEmailBackend

from tests.notifications.failing_backend import _next_attempt


class HangingFileBackend(FileEmailBackend):
    def send_messages(self, email_messages):
        if _next_attempt(Path(os.environ["HANGING_EMAIL_COUNTER"])) == 1:
            Path(os.environ["HANGING_EMAIL_COUNTER"] + ".hanging").touch()
            time.sleep(600)
        return super().send_messages(email_messages)
