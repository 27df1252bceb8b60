"""Prescription uploads: checked by what the bytes are, kept where no URL can reach them.

A file named ``scan.pdf`` may be anything; the extension and the browser's Content-Type are
the customer's claims, so neither is read. ``filetype`` looks at the file's first bytes (the
"magic number") and only a PDF, JPEG or PNG is accepted. Files are stored under
``PRIVATE_MEDIA_ROOT`` with a random name: the customer's own file name (which may hold a
patient's name) never reaches the disk, and the storage has no URL, so the only way to read a
prescription is ``prescriptions.review_views.prescription_file``, which checks who is asking.
"""

from __future__ import annotations

import math
import os
import uuid
from dataclasses import dataclass

import filetype
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import FileSystemStorage
from django.utils.deconstruct import deconstructible

#: What a prescription may be, by detected MIME type -> extension used on disk.
ALLOWED_TYPES = {
    "application/pdf": "pdf",
    "image/jpeg": "jpg",
    "image/png": "png",
}
#: Shown inline in the browser (all allowed types are documents or still images).
INLINE_TYPES = frozenset(ALLOWED_TYPES)
HEAD_BYTES = 8192


@deconstructible
class PrivateStorage(FileSystemStorage):
    """A FileSystemStorage without a URL: ``url()`` refuses, so no template can link to a file."""

    def __init__(self, **kwargs):
        kwargs.pop("base_url", None)
        super().__init__(**kwargs)

    # Read from the settings at each use (not cached): the model field keeps one instance.
    @property
    def base_location(self):
        return self._value_or_setting(self._location, settings.PRIVATE_MEDIA_ROOT)

    @property
    def location(self):
        return os.path.abspath(self.base_location)

    def url(self, name):
        raise ValueError(
            "Private files have no URL; serve them through a permission-checking view."
        )


def private_storage() -> PrivateStorage:
    """Callable for ``FileField(storage=...)``: read at use time, so tests can move the root."""
    return PrivateStorage(file_permissions_mode=0o600)


@dataclass(frozen=True)
class CheckedUpload:
    """An upload that passed the checks: its detected type and the random name it will get."""

    file: object  # django UploadedFile
    content_type: str
    size: int

    @property
    def extension(self) -> str:
        return ALLOWED_TYPES[self.content_type]

    def new_name(self) -> str:
        return f"prescriptions/{uuid.uuid4().hex}.{self.extension}"


def max_upload_bytes() -> int:
    return int(settings.PRESCRIPTION_MAX_UPLOAD_BYTES)


def _size_text(size: int, *, round_up: bool) -> str:
    """A size as people read it, to a tenth: the file's size rounded up and the limit down, so
    a file just over the limit never reads as the limit itself ("10.1 MB", not "10 MB")."""
    for unit, factor in (("MB", 1024 * 1024), ("KB", 1024)):
        if size >= factor:
            tenths = size * 10 / factor
            tenths = math.ceil(tenths) if round_up else math.floor(tenths)
            return f"{tenths / 10:g} {unit}"
    return f"{size} bytes"


def check_prescription_upload(upload) -> CheckedUpload:
    """Accept a PDF, JPEG or PNG of at most ``PRESCRIPTION_MAX_UPLOAD_BYTES``, judged by content.

    Raises ``ValidationError`` with a message fit for the form.
    """
    size = int(getattr(upload, "size", 0) or 0)
    if size <= 0:
        raise ValidationError(
            "The file is empty. Please choose a photo or scan of your prescription.", code="empty"
        )
    limit = max_upload_bytes()
    if size > limit:
        raise ValidationError(
            f"The file is too large ({_size_text(size, round_up=True)}). "
            f"The limit is {_size_text(limit, round_up=False)}; "
            "a photo taken with a phone is usually well under it.",
            code="too_large",
        )
    upload.seek(0)
    head = upload.read(HEAD_BYTES)
    upload.seek(0)
    kind = filetype.guess(head)
    if kind is None or kind.mime not in ALLOWED_TYPES:
        raise ValidationError(
            "This file is not a PDF, JPEG or PNG image. Please upload a scan or photo of your prescription "
            "in one of those formats (renaming a file does not change its format).",
            code="bad_type",
        )
    if kind.mime == "application/pdf" and b"%%EOF" not in _tail(upload):
        raise ValidationError(
            "This PDF looks incomplete or damaged. Please upload it again.", code="bad_pdf"
        )
    return CheckedUpload(file=upload, content_type=kind.mime, size=size)


def _tail(upload, length: int = 2048) -> bytes:
    """A PDF ends with ``%%EOF`` (possibly followed by whitespace): a cut-off upload does not."""
    upload.seek(0, 2)
    end = upload.tell()
    upload.seek(max(0, end - length))
    tail = upload.read(length)
    upload.seek(0)
    return tail
