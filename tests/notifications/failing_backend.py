"""A test-only email backend: a mail server that is down for the first N tries, or until a time.

Configured through the environment (so a worker subprocess can use it too): ``EMAIL_BACKEND``
points here, ``FLAKY_EMAIL_FAILURES`` says how many sends fail, ``FLAKY_EMAIL_DOWN_UNTIL`` (a Unix
time, read from ``time.time()`` so a test's frozen clock moves it) says until when every send
fails, ``FLAKY_EMAIL_ERROR`` which error the server gives (see ``ERRORS``), and
``FLAKY_EMAIL_COUNTER`` is a file counting every attempt (a file, so the count survives across
tasks and is readable by the test process). Otherwise it writes the message with Django's file
backend into ``EMAIL_FILE_PATH``.
"""

import fcntl
import os
import smtplib
import time
from pathlib import Path

from django.core.mail.backends.filebased import EmailBackend as FileEmailBackend

#: What the "server" answers while it is down: a name for each way a real one fails.
ERRORS = {
    "disconnected": lambda note: smtplib.SMTPServerDisconnected(f"Simulated outage ({note})"),
    "refused": lambda note: ConnectionRefusedError(111, f"Connection refused ({note})"),
    "timeout": lambda note: TimeoutError(f"timed out ({note})"),
    "busy": lambda note: smtplib.SMTPDataError(451, b"4.3.0 Try again later"),
    "mailbox_full": lambda note: smtplib.SMTPRecipientsRefused(
        {"x@example.com": (452, b"4.2.2 Mailbox full")}
    ),
    "no_such_user": lambda note: smtplib.SMTPRecipientsRefused(
        {"x@example.com": (550, b"5.1.1 No such user")}
    ),
    "rejected": lambda note: smtplib.SMTPDataError(554, b"5.7.1 Message rejected"),
}


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
        down = attempt <= int(os.environ.get("FLAKY_EMAIL_FAILURES", "0")) or time.time() < float(
            os.environ.get("FLAKY_EMAIL_DOWN_UNTIL", "0")
        )
        if down:
            raise ERRORS[os.environ.get("FLAKY_EMAIL_ERROR", "disconnected")](f"attempt {attempt}")
        return super().send_messages(email_messages)
