"""WhiteNoise's hashed, compressed static files storage, each URL worked out once per process.

``{% static %}`` asks the storage for a file's URL: the manifest lookup, URL splitting, quoting
and joining, five times on every page (``base.html``'s favicon, style sheets and scripts). The answer only changes with the manifest (``collectstatic``'s ``post_process``, which
starts afresh), ``DEBUG`` (part of the key) or the storage settings (Django then builds a new
storage). A name missing from the manifest still raises, and is not kept.
"""

from __future__ import annotations

from django.conf import settings
from whitenoise.storage import CompressedManifestStaticFilesStorage

MAX_KEPT = 2048


class RememberingManifestStaticFilesStorage(CompressedManifestStaticFilesStorage):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._urls: dict[tuple[str, bool, bool], str] = {}

    def url(self, name, force=False):
        key = (name, force, settings.DEBUG)
        url = self._urls.get(key)
        if url is None:
            url = super().url(name, force)
            if len(self._urls) < MAX_KEPT:
                self._urls[key] = url
        return url

    def post_process(self, *args, **kwargs):
        self._urls.clear()
        yield from super().post_process(*args, **kwargs)
        self._urls.clear()
