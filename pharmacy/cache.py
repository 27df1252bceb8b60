"""The default cache: Redis, with this process's memory standing in while Redis is unreachable.

Why not django-redis' ``IGNORE_EXCEPTIONS`` alone: it turns every failed call into a miss, and a
miss is not a neutral answer for everything that keeps state in the cache. allauth's rate limits
take a lock with ``cache.add`` before they count; an ignored error makes ``add`` answer "not
added", the lock is never taken, and every sign-in, sign-up and password reset is refused with
429 for as long as Redis is away. So while Redis is unreachable the calls go to a local-memory
cache instead: rate limits keep counting (per process, which only makes them more lenient by a
factor of the number of workers), sessions (``cached_db``) read from the database, and the rest
of the shop serves as if the cache were cold.

Each failure opens a circuit for ``RETRY_AFTER_SECONDS``: during that time Redis is not tried
again, so a request pays the socket timeout (``REDIS_SOCKET_TIMEOUT``) at most once per process
per window instead of once per cache call. The catalog's page cache does not use this alias
(see ``CATALOG_PAGE_CACHE_ALIAS``): a page stored in one process's memory could not be retired by
a price change saved on another server, so those pages are simply not cached during an outage.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache
from django.core.cache.backends.locmem import LocMemCache
from django_redis.cache import RedisCache
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import RedisError

logger = logging.getLogger("pharmacy.cache")

RETRY_AFTER_SECONDS = 5.0
_FAILURES = (ConnectionInterrupted, RedisError, OSError)


class RedisWithLocalFallback(BaseCache):
    """A django-redis cache whose calls fall back to local memory while Redis is down."""

    def __init__(self, server: str, params: dict[str, Any]):
        super().__init__(params)
        options = dict(params.get("OPTIONS") or {})
        options["IGNORE_EXCEPTIONS"] = False  # the failures are handled here, with a fallback
        self.retry_after = float(options.pop("RETRY_AFTER_SECONDS", RETRY_AFTER_SECONDS))
        # Without the fallback a call during an outage fails at once (ConnectionInterrupted) for
        # the caller to handle: for caches whose entries must agree across servers.
        self.local_fallback = bool(options.pop("LOCAL_FALLBACK", True))
        self._redis = RedisCache(server, {**params, "OPTIONS": options})
        self._local = LocMemCache(
            f"fallback-{id(self)}", {**params, "OPTIONS": {"MAX_ENTRIES": 10_000}}
        )
        self._down_until = 0.0
        self._lock = threading.Lock()

    @property
    def degraded(self) -> bool:
        """True while Redis is skipped after a failure (calls are answered from local memory)."""
        return time.monotonic() < self._down_until

    def _call(self, name: str, *args, **kwargs):
        if not self.degraded:
            try:
                return getattr(self._redis, name)(*args, **kwargs)
            except _FAILURES as exc:
                with self._lock:
                    first = not self.degraded
                    self._down_until = time.monotonic() + self.retry_after
                if first:
                    logger.warning(
                        "Redis cache unreachable (%s); not tried again for %.0f s",
                        exc,
                        self.retry_after,
                    )
                if not self.local_fallback:
                    raise
        elif not self.local_fallback:
            raise ConnectionInterrupted(connection=None)
        return getattr(self._local, name)(*args, **kwargs)

    # The cache API, each call through ``_call``.
    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("add", key, value, timeout=timeout, version=version)

    def get(self, key, default=None, version=None):
        return self._call("get", key, default, version=version)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("set", key, value, timeout=timeout, version=version)

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("touch", key, timeout=timeout, version=version)

    def delete(self, key, version=None):
        return self._call("delete", key, version=version)

    def get_many(self, keys, version=None):
        return self._call("get_many", keys, version=version)

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("set_many", data, timeout=timeout, version=version)

    def delete_many(self, keys, version=None):
        return self._call("delete_many", keys, version=version)

    def has_key(self, key, version=None):
        return self._call("has_key", key, version=version)

    def incr(self, key, delta=1, version=None):
        return self._call("incr", key, delta, version=version)

    def decr(self, key, delta=1, version=None):
        return self._call("decr", key, delta, version=version)

    def clear(self):
        self._local.clear()
        return self._call("clear")

    def close(self, **kwargs):
        self._redis.close(**kwargs)
