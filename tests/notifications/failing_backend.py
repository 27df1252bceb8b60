"""A test-only email backend for the real-worker test: the mail server is down for the first N tries.

Configured through the worker's environment: ``EMAIL_BACKEND`` points here, ``FLAKY_EMAIL_FAILURES``
says how many sends fail, ``FLAKY_EMAIL_COUNTER`` is a file counting every attempt (a file, so the
count survives across tasks and is readable by the test process). After the failures it writes
the message with Django's file backend into ``EMAIL_FILE_PATH``.
"""
import fcntl
import os
import smtplib
from pathlib import Path

from django.core.mail.backends.filebased import EmailBackend as FileEmailBackend


def _next_attempt(counter: Path) -> int:
    counter.touch(exist_ok=True)
    with counter.open("r+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        attempt = int(handle.read() or 0) + 1
        handle.seek(0)
        handle.truncate()
        handle.write(str(attempt))
    return attempt


class FlakyFileBackend(FileEmailBackend):
    def send_messages(self, email_messages):
        attempt = _next_attempt(Path(os.environ["FLAKY_EMAIL_COUNTER"]))
        if attempt <= int(os.environ.get("FLAKY_EMAIL_FAILURES", "0")):
            raise smtplib.SMTPServerDisconnected(f"Simulated outage (attempt {attempt})")
        return super().send_messages(email_messages)
