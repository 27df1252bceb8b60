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


import socket
import threading

import pytest

#: Nothing listens there: connections are refused at once.
CLOSED_PORT_REDIS = "redis://127.0.0.1:1/10"


@pytest.fixture
def silent_redis():
    """A 'Redis' that accepts connections and never answers (a hung server, a black-holed route)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"redis://127.0.0.1:{server.getsockname()[1]}/10"
    finally:
        stop.set()
        thread.join(timeout=2)
        for conn in held:
            conn.close()
        server.close()


@pytest.fixture(params=["closed-port", "silent-server"])
def unreachable_redis(request):
    """Both ways Redis goes away: refused at once, or accepted and never answered."""
    if request.param == "closed-port":
        return CLOSED_PORT_REDIS
    return request.getfixturevalue("silent_redis")
