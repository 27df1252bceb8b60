"""The Celery application. Tasks live in each app's ``tasks.py`` and are found by autodiscovery."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pharmacy.settings")

app = Celery("pharmacy")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def bounded_connection(timeout: float | None = None):
    """A fresh broker connection that gives up after ``timeout`` seconds, without retrying.

    For the web side only (handing a task over, readiness pings): a request must never wait on
    an unreachable or silent broker for longer than this. The worker's own connections keep
    Celery's patient reconnection. ``timeout`` defaults to ``CELERY_PUBLISH_TIMEOUT``.
    """
    if timeout is None:
        from django.conf import settings

        timeout = getattr(settings, "CELERY_PUBLISH_TIMEOUT", 0.5)
    return app.connection_for_write(
        connect_timeout=timeout,
        transport_options={
            "socket_connect_timeout": timeout,
            "socket_timeout": timeout,
            "max_retries": 0,  # kombu's ensure_connection: one attempt
            "connect_retries_timeout": timeout,
        },
    )


def publish_bounded(task, *args, **kwargs) -> None:
    """``task.delay(*args, **kwargs)`` that raises within ``CELERY_PUBLISH_TIMEOUT`` if it cannot.

    No publish retry: the caller keeps its own record (an outbox row) and a periodic sweep hands
    it over again, so a broker outage costs a delay, never a hung request.
    """
    if app.conf.task_always_eager:
        task.apply_async(args=args, kwargs=kwargs)
        return
    with bounded_connection() as connection:
        task.apply_async(args=args, kwargs=kwargs, connection=connection, retry=False)


def celery_queue_length(*, unknown: int = -1) -> int | None:
    """Tasks waiting in the default queue (Redis LLEN): ``unknown`` if Redis does not answer in
    ``METRICS_REDIS_TIMEOUT``, None when there is no Redis broker (the demo runs tasks in-process).
    """
    import logging

    import redis
    from django.conf import settings

    broker = getattr(settings, "CELERY_BROKER_URL", "") or ""
    eager = getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False)
    if not broker.startswith(("redis://", "rediss://", "unix://")) or eager:
        return None
    timeout = settings.METRICS_REDIS_TIMEOUT
    client = redis.Redis.from_url(
        broker, socket_connect_timeout=timeout, socket_timeout=timeout, retry=None
    )
    try:
        return int(client.llen(app.conf.task_default_queue))
    except (redis.RedisError, OSError) as exc:
        logging.getLogger(__name__).warning(
            "Celery queue length unknown: %s: %s", type(exc).__name__, exc
        )
        return unknown
    finally:
        client.close()
