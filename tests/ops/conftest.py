import contextlib

from pharmacy.celery import app


def _drop_broker_pool() -> None:
    # The app caches its connection pool for the broker it first used; drop it so the next
    # publish or control command connects to the broker configured now.
    # (Not closed: kombu's process-wide producer pools may still hand out its connections.)
    app._pool = None
    app.amqp._producer_pool = None


@contextlib.contextmanager
def celery_broker(url: str, *, eager: bool = False):
    """Point the Celery app at ``url`` (not in-process) for the duration, then restore it."""
    old = app.conf.broker_url, app.conf.task_always_eager
    _drop_broker_pool()
    app.conf.broker_url, app.conf.task_always_eager = url, eager
    try:
        yield app
    finally:
        _drop_broker_pool()
        app.conf.broker_url, app.conf.task_always_eager = old
