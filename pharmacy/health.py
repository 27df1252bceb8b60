"""Health endpoints for load balancers and orchestrators.

``/healthz`` (liveness) touches nothing but the Python process: a database outage must not make
the orchestrator restart every web process. ``/readyz`` (readiness) checks each backing service
with a short timeout so a load balancer stops sending traffic to a process that cannot serve it.
Neither needs a login, and neither reveals more than each check's status and timing.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.db import connections, transaction
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

logger = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 1.0


@never_cache
@require_safe
def healthz(request):
    return HttpResponse("ok", content_type="text/plain")


def check_database() -> None:
    connection = connections["default"]
    with transaction.atomic(using="default"), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Bound the check itself (for this transaction only): a stuck database must not
            # hang the probe.
            cursor.execute("SET LOCAL statement_timeout = %s", [int(CHECK_TIMEOUT_SECONDS * 1000)])
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_redis() -> None:
    import redis

    client = redis.Redis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=CHECK_TIMEOUT_SECONDS,
        socket_timeout=CHECK_TIMEOUT_SECONDS,
    )
    try:
        if not client.ping():
            raise RuntimeError("Redis did not answer PING")
    finally:
        client.close()


def check_celery() -> None:
    from pharmacy.celery import app

    # limit=1: return on the first reply instead of waiting out the timeout for more.
    replies = app.control.ping(timeout=CHECK_TIMEOUT_SECONDS, limit=1)
    if not replies:
        raise RuntimeError("no Celery worker answered")


def celery_is_remote() -> bool:
    """A worker is expected only when tasks go through a real broker."""
    broker = getattr(settings, "CELERY_BROKER_URL", "") or ""
    return bool(broker) and not broker.startswith("memory://") and not getattr(
        settings, "CELERY_TASK_ALWAYS_EAGER", False
    )


def readiness_checks() -> dict[str, Callable[[], None]]:
    checks: dict[str, Callable[[], None]] = {"database": check_database}
    if getattr(settings, "REDIS_URL", ""):
        checks["redis"] = check_redis
    if celery_is_remote() and getattr(settings, "HEALTH_CHECK_CELERY", True):
        checks["celery"] = check_celery
    return checks


@never_cache
@require_safe
def readyz(request):
    results: dict[str, dict] = {}
    healthy = True
    for name, check in readiness_checks().items():
        started = time.perf_counter()
        try:
            check()
        except Exception as exc:  # any failure means "not ready"; the reason goes to the log only
            healthy = False
            status = "error"
            logger.warning("readiness check %s failed: %s", name, exc.__class__.__name__, exc_info=True)
        else:
            status = "ok"
        results[name] = {"status": status, "ms": round((time.perf_counter() - started) * 1000, 1)}
    body = {"status": "ok" if healthy else "error", "checks": results}
    return JsonResponse(body, status=200 if healthy else 503)


def bench_ceiling(request):
    """The cheapest Django response in this deployment: the benchmark's ceiling (BENCH_CEILING=1)."""
    return HttpResponse("ceiling", content_type="text/plain")
