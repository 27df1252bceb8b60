"""The Redis databases the test suite uses, in one place, from the environment.

Two test suites can run at once against one PostgreSQL and one Redis server when each has its own
database name (``DATABASE_URL``; pytest-django prefixes it with ``test_``) and its own block of
Redis databases (``TEST_REDIS_DB_OFFSET``). Redis has 16 databases (0-15) by default and the suite
needs ``len(REDIS_ROLES)`` of them, so offsets 0 and 8 give two suites that never meet:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/pharmacy_a TEST_REDIS_DB_OFFSET=0 make test
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/pharmacy_b TEST_REDIS_DB_OFFSET=8 make test

``TEST_REDIS_URL_BASE`` (default ``redis://127.0.0.1:6379``) points the suite at another server.
Tests that flush or fill a Redis database take its URL from :func:`redis_url`, never a literal.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

#: Each Redis database the suite uses, by what it is for: the number is added to the offset.
REDIS_ROLES: dict[str, int] = {
    "readiness": 0,  # /readyz pings it (reads nothing, writes nothing)
    "cache": 1,  # tests/catalog/test_cache.py: two servers sharing the page cache
    "notifications_broker": 2,  # tests/notifications/test_worker_integration.py
    "scale": 3,  # tests/scale/test_scale_out.py: cache, sessions and broker of two servers
    "accounts_broker": 4,  # tests/accounts/test_email_worker.py
    "ops_broker": 5,  # tests/ops/test_worker_integration.py
    "silent_broker": 6,  # a broker no worker listens on (tests/ops/test_health.py)
    "process_health": 7,  # tests/ops/test_process_health.py: a worker and beat answering pings
}

DEFAULT_URL_BASE = "redis://127.0.0.1:6379"
REDIS_DATABASES = 16


def redis_url(role: str, environ: Mapping[str, str] | None = None) -> str:
    """The URL of ``role``'s Redis database for this suite (``TEST_REDIS_URL_BASE``/``TEST_REDIS_DB_OFFSET``)."""
    environ = os.environ if environ is None else environ
    base = environ.get("TEST_REDIS_URL_BASE", DEFAULT_URL_BASE).rstrip("/")
    offset = int(environ.get("TEST_REDIS_DB_OFFSET", "0"))
    number = offset + REDIS_ROLES[role]
    if not 0 <= number < REDIS_DATABASES:
        raise ValueError(
            f"TEST_REDIS_DB_OFFSET={offset} puts {role!r} at Redis database {number}; "
            f"the suite needs {len(REDIS_ROLES)} databases from the offset, within 0-{REDIS_DATABASES - 1}."
        )
    return f"{base}/{number}"
